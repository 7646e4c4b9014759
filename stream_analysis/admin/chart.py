"""Frames per status over time: the admin's chart, as data and as bars of an SVG.

The chart is drawn on the server (no JavaScript, nothing fetched from the
internet). Its query is bounded: it reads only the frames of the last ``count``
buckets of ``start_time`` (through the index on it) and counts them per bucket
and status in the database; the frames themselves are never loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..coordinator import newest_frame_start
from ..expressions import start_bucket
from ..grid import EPOCH, frame_start
from ..status import count_expressions

#: Bucket widths of the chart: the smallest one at least a frame long is used.
BUCKET_WIDTHS = tuple(timedelta(minutes=minutes) for minutes in (1, 5, 15, 60, 6 * 60, 24 * 60))
#: Statuses stacked in each bar, bottom up, and their colours (Django admin's palette).
STATUSES = {"done": "#70bf2b", "pending": "#999999", "failed": "#ba2121"}


@dataclass(frozen=True)
class Bucket:
    """Frames starting in ``[start, start + width)``, counted by status."""

    start: datetime
    done: int = 0
    pending: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.done + self.pending + self.failed


def bucket_width(duration: timedelta) -> timedelta:
    """The smallest of :data:`BUCKET_WIDTHS` that holds a frame; ``duration`` if none does."""
    return next((width for width in BUCKET_WIDTHS if width >= duration), duration)


def bucket_starts(
    newest: datetime, width: timedelta, offset: timedelta, count: int
) -> list[datetime]:
    """The starts of the ``count`` buckets ending with the one holding ``newest``, oldest first.

    Buckets are aligned like frames (on the epoch plus ``offset``), so a bucket
    as wide as a frame holds exactly that frame.
    """
    last = frame_start(newest, width, offset)
    return [last - width * (count - 1 - index) for index in range(count)]


def frame_history(
    frame_class: Any, *, count: int = 60, width: timedelta | None = None
) -> list[Bucket]:
    """The last ``count`` buckets of ``frame_class``'s frames, up to its newest frame.

    ``width`` defaults to :func:`bucket_width` of the frame's DURATION. Empty
    buckets are included (all zero); no frames at all gives an empty list.
    One indexed aggregate and one grouped count.
    """
    width = width or bucket_width(frame_class.DURATION)
    manager = frame_class._default_manager
    newest = newest_frame_start(frame_class)
    if newest is None:
        return []
    starts = bucket_starts(newest, width, frame_class.OFFSET, count)
    origin = EPOCH + frame_class.OFFSET
    rows = (
        manager.filter(start_time__gte=starts[0])
        .annotate(bucket=start_bucket(width, origin))
        .order_by()
        .values("bucket")
        .annotate(**count_expressions())
    )
    counted = {row.pop("bucket"): row for row in rows}
    return [Bucket(start, **counted.get(start, {})) for start in starts]


@dataclass(frozen=True)
class Bar:
    """One status's part of a bucket's stacked bar, in SVG user units."""

    status: str
    colour: str
    count: int
    start: datetime
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    """A stacked bar chart of :class:`Bucket` s, ``width`` by ``height`` units."""

    buckets: list[Bucket]
    bucket_width: timedelta
    bars: list[Bar]
    tallest: int
    width: int
    height: int

    @property
    def bucket_label(self) -> str:
        return describe(self.bucket_width)

    @property
    def start(self) -> datetime | None:
        return self.buckets[0].start if self.buckets else None

    @property
    def end(self) -> datetime | None:
        return self.buckets[-1].start + self.bucket_width if self.buckets else None


def chart(buckets: list[Bucket], width: timedelta, *, size: tuple[int, int] = (600, 120)) -> Chart:
    """Lay ``buckets`` out as stacked bars: one column per bucket, a rect per status present.

    The tallest bucket fills the height; a non-empty part is at least one unit tall.
    """
    chart_width, chart_height = size
    tallest = max((bucket.total for bucket in buckets), default=0)
    column = chart_width / len(buckets) if buckets else 0.0
    bars = []
    for index, bucket in enumerate(buckets):
        bars.extend(stack(bucket, index * column, column, chart_height, tallest))
    return Chart(buckets, width, bars, tallest, chart_width, chart_height)


def describe(width: timedelta) -> str:
    """A width in words: '1 minute', '15 minutes', '6 hours', '2 days', '1.5 seconds'."""
    seconds = width.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds:g} second{'s' if seconds != 1 else ''}"


def stack(bucket: Bucket, x: float, column: float, height: int, tallest: int) -> list[Bar]:
    """The rects of one bucket, bottom up in :data:`STATUSES` order."""
    bars, top = [], float(height)
    for status, colour in STATUSES.items():
        count = getattr(bucket, status)
        if not count:
            continue
        part = max(count * height / tallest, 1.0)
        top -= part
        bars.append(Bar(status, colour, count, bucket.start, x + 1, top, max(column - 2, 1), part))
    return bars
