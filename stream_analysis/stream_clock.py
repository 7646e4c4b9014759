"""How far the stream's clock is trusted: items stamped far in the future are not followed.

The stream's latest time is its watermark: frames close up to it. One item
stamped in the year 2100 (a wrong clock, a typo) would close every frame up to
then. Beyond now + ``STREAM_ANALYSIS_FUTURE_TOLERANCE`` the latest time is not
followed; the latest item within it is found by a bisection of existence probes
(``get_latest_stream_time()`` cannot look past the bad item).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from . import grid
from .settings import app_settings
from .streams import AbstractStream

logger = logging.getLogger(__name__)

#: How close the search for the latest trusted item gets (the database's resolution).
MICROSECOND = timedelta(microseconds=1)


def future_limit(now: datetime) -> datetime | None:
    """The latest stream time trusted at ``now`` (``FUTURE_TOLERANCE``); None: no limit."""
    tolerance = app_settings.FUTURE_TOLERANCE
    return None if tolerance is None else now + timedelta(seconds=tolerance)


def has_items(stream: AbstractStream, start: datetime, end: datetime) -> bool:
    """Whether the stream holds an item in ``[start, end)`` (one EXISTS for a queryset)."""
    data = stream.get_stream_data(start, end)
    exists = getattr(data, "exists", None)
    return bool(exists()) if callable(exists) else len(data) > 0


def latest_before(stream: AbstractStream, earliest: datetime, limit: datetime) -> datetime | None:
    """The time of the stream's latest item before ``limit`` (None: there is none).

    A bisection of ``[earliest, limit)`` by :func:`has_items`, to the microsecond:
    about 50 index probes on a queryset stream. Only run while an item lies
    beyond ``limit``, which ``get_latest_stream_time()`` cannot look past.
    """
    low, high = earliest, limit
    if low >= high or not has_items(stream, low, high):
        return None
    while high - low > MICROSECOND:
        middle = low + (high - low) / 2
        if has_items(stream, middle, limit):
            low = middle
        else:
            high = middle
    return low


def trusted_bounds(
    stream: AbstractStream, bounds: tuple[datetime, datetime], now: datetime
) -> tuple[datetime, datetime] | None:
    """``bounds`` with the latest time brought back within ``FUTURE_TOLERANCE`` of ``now``.

    The stream's latest time is its clock: one item stamped in the year 2100
    would close every frame up to then. Returns None when no item is trusted.
    """
    earliest = grid.require_aware(bounds[0], "get_earliest_stream_time()")
    latest = grid.require_aware(bounds[1], "get_latest_stream_time()")
    limit = future_limit(now)
    if limit is None or latest <= limit:
        return bounds
    trusted = latest_before(stream, earliest, limit)
    return None if trusted is None else (earliest, trusted)


def report_future_item(key: str, latest: datetime, now: datetime) -> None:
    """Log that task ``key``'s stream has its latest item beyond the tolerance, with the fix.

    The coordinator calls it once per new latest time (``AnalysisTask.stream_latest``).
    """
    logger.error(
        "task %r: the stream's latest item is at %s, more than STREAM_ANALYSIS_FUTURE_TOLERANCE "
        "(%s s) after now (%s): frames are closed only up to the latest item before now + "
        "that tolerance. Correct or delete that item, or raise STREAM_ANALYSIS_FUTURE_TOLERANCE "
        "(None: no limit) if the stream's times are meant to run ahead of the clock.",
        key,
        latest.isoformat(),
        app_settings.FUTURE_TOLERANCE,
        now.isoformat(timespec="seconds"),
        extra={"action": "future_item", "task": key, "item_time": latest.isoformat()},
    )
