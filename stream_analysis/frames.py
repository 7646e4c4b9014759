"""Pure arithmetic of time frames: which frames exist, cutoffs, backoff, lock keys.

Nothing here touches the database, so all of it is unit-tested in milliseconds.
Frames are aligned to multiples of their DURATION since the Unix epoch (UTC):
15 s frames start at :00, :15, :30 and :45 of every minute, whatever the
stream's first item. That is the tumbling window of stream engines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from .exceptions import StreamError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

K = TypeVar("K")


def require_aware(moment: datetime, what: str) -> datetime:
    """Return ``moment`` in UTC; naive datetimes are rejected, not guessed."""
    if not isinstance(moment, datetime):
        raise StreamError(f"{what} must be a datetime, got {moment!r}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise StreamError(
            f"{what} returned a naive datetime ({moment!r}). Return timezone-aware "
            "datetimes (USE_TZ = True, or datetime.now(UTC))."
        )
    return moment.astimezone(UTC)


def frame_start(moment: datetime, duration: timedelta) -> datetime:
    """Start of the frame that contains ``moment``: the previous multiple of ``duration``."""
    moment = require_aware(moment, "frame_start()")
    return moment - (moment - EPOCH) % duration


@dataclass(frozen=True)
class FrameRange:
    """Frames ``first``, ``first + duration``, … ``last`` (inclusive), all aligned."""

    first: datetime
    last: datetime
    duration: timedelta

    @property
    def count(self) -> int:
        return (self.last - self.first) // self.duration + 1

    @property
    def end(self) -> datetime:
        """End of the last frame."""
        return self.last + self.duration


def due_frames(
    *,
    duration: timedelta,
    earliest: datetime,
    latest: datetime,
    newest_existing_start: datetime | None,
) -> FrameRange | None:
    """The frames to create so that every closed frame of the stream exists.

    A frame [s, s + duration) is closed once the stream's latest time has reached
    its end (``s + duration <= latest``). Creation continues after the newest
    existing frame, or starts at the frame holding the stream's earliest item.
    Returns None when there is nothing to create.
    """
    earliest = require_aware(earliest, "get_earliest_stream_time()")
    latest = require_aware(latest, "get_latest_stream_time()")
    if latest < earliest:
        raise StreamError(
            f"get_latest_stream_time() ({latest}) is before get_earliest_stream_time() "
            f"({earliest}). Check the stream interface's queries."
        )
    first = frame_start(earliest, duration)
    if newest_existing_start is not None:
        first = max(first, newest_existing_start + duration)
    last = frame_start(latest, duration) - duration
    if last < first:
        return None
    return FrameRange(first=first, last=last, duration=duration)


def backfill_frames(
    *, duration: timedelta, earliest: datetime, latest: datetime
) -> FrameRange | None:
    """Every closed frame from the stream's earliest item on (existing ones included)."""
    return due_frames(
        duration=duration, earliest=earliest, latest=latest, newest_existing_start=None
    )


def next_close(latest: datetime, duration: timedelta) -> datetime:
    """When the frame holding the stream's ``latest`` time closes (in stream time)."""
    return frame_start(latest, duration) + duration


def memory_cutoff(
    oldest_uncalculated_start: datetime | None, newest_calculated_start: datetime | None
) -> datetime | None:
    """The earliest stream time a frame model still needs (None: keep everything).

    Data before the oldest frame that still has to be calculated is no longer
    needed; with every frame calculated, data before the newest frame is not.
    """
    if oldest_uncalculated_start is not None:
        return oldest_uncalculated_start
    return newest_calculated_start


def combine_cutoffs(cutoffs: Iterable[tuple[K, datetime | None]]) -> dict[K, datetime | None]:
    """Per key (a stream class), the minimum cutoff of all its users; None wins."""
    combined: dict[K, datetime | None] = {}
    for key, cutoff in cutoffs:
        if key not in combined:
            combined[key] = cutoff
            continue
        current = combined[key]
        if current is None or cutoff is None:
            combined[key] = None
        else:
            combined[key] = min(current, cutoff)
    return combined


def retry_delay(attempts: int, base: float, cap: float) -> timedelta:
    """Backoff before the next try after ``attempts`` failed tries: base, 2·base, 4·base…"""
    exponent = max(attempts - 1, 0)
    return timedelta(seconds=min(cap, base * 2 ** min(exponent, 32)))


def lock_key(*parts: str) -> int:
    """A signed 64-bit advisory-lock key derived from text (never SQL built from it)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
