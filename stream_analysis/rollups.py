"""Rollups: frames whose stream is another frame model's calculated frames.

``STREAM_CLASS = FrameStream.of(DemoTimeFrame)`` makes a frame model a rollup
of ``DemoTimeFrame``: its ``calculate(frames)`` gets the calculated source
frames it covers (a queryset, oldest first) instead of raw items, so a minute,
an hour or a day is computed from the 15-second results, never from the raw
stream again. Rollups chain: ``FrameStream.of(MinuteFrame)`` for hours.

The source frames are a stream like any other, with these rules:

- Its time (the watermark) is the end of the newest source frame before which
  every source frame is calculated: a rollup frame closes only once each
  source frame it covers is calculated, and a failed or unfinished source frame
  holds every later rollup frame back (:func:`held_back_by` says which).
- Its arrivals are the source frames' recalculations: a recomputed source frame
  (late items, ``recompute``, a retried failure) makes the rollup frames over it
  stale (rollups recompute late data by default), level after level, each at
  most once per change. A recalculation is reported ``commit_margin()`` after
  it read its data: by then the worker that calculated it has committed.
- Nothing is ever deleted from the source table by a rollup: cleanup of a frame
  table is the user's business (``delete_before`` deletes nothing).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models

from . import states
from .model_stream import ModelStream
from .settings import app_settings

if TYPE_CHECKING:
    from collections.abc import Iterable

#: A frame model (``BaseTimeFrame`` subclass); not imported here, models import this module.
BaseTimeFrame = Any


def commit_margin() -> timedelta:
    """How long after reading its data a worker may still commit a frame.

    A batch hands over after ``TIME_BUDGET`` plus one frame, which is interrupted
    after ``FRAME_TIME_LIMIT``: a recalculation read before ``now - margin`` is
    committed (or rolled back) by now.
    """
    return timedelta(seconds=app_settings.TIME_BUDGET + app_settings.FRAME_TIME_LIMIT)


class FrameStream(ModelStream):
    """The calculated frames of ``SOURCE`` as a stream; make one with :meth:`of`.

    A :class:`ModelStream` of the source model's calculated frames by their
    ``start_time``, so a rollup can use ``AGGREGATES`` (``Sum("item_count")``)
    as well as ``calculate()``; the watermark, the arrivals and deletion follow
    the rules above instead of a ModelStream's.
    """

    time_field = "start_time"

    #: The source frame model (set by :meth:`of`).
    SOURCE: ClassVar[type[BaseTimeFrame] | None] = None

    @classmethod
    @cache
    def of(cls, source: type[BaseTimeFrame]) -> type[FrameStream]:
        """The stream of ``source``'s calculated frames (one class per source)."""
        name = f"{source.__name__}Stream"
        return type(
            name,
            (cls,),
            {
                "SOURCE": source,
                "model": source,
                "__module__": source.__module__,
                "__qualname__": name,
                "__doc__": f"The calculated frames of {source.__name__}, as a stream.",
            },
        )

    @classmethod
    def source(cls) -> type[BaseTimeFrame]:
        if cls.SOURCE is None:
            raise TypeError("Use FrameStream.of(SourceFrame), not FrameStream itself.")
        return cls.SOURCE

    def frames(self) -> models.QuerySet[Any]:
        """Every source frame, calculated or not."""
        return self.source()._default_manager.all()

    def get_queryset(self) -> models.QuerySet[Any]:
        """The calculated source frames: the items of this stream."""
        return self.frames().filter(states.CALCULATED)

    def is_stream_empty(self) -> bool:
        return not self.frames().exists()

    def get_earliest_stream_time(self) -> datetime | None:
        return self.source().get_earliest_start_time()

    def get_latest_stream_time(self) -> datetime | None:
        """The start of the oldest source frame not calculated, else the newest one's end.

        One statement (one snapshot) that reads each by its index. Read in two,
        source frames that the source's tick committed between them were missed by
        the first and counted by the second: the rollup then passed them before they
        were calculated, and, since a first calculation is no late arrival, its frames
        over them kept a wrong count.
        """
        frames = self.frames()
        oldest_open = frames.filter(states.NOT_CALCULATED).order_by("start_time")
        found = (  # the newest frame, and the oldest not calculated: each by its index
            frames.order_by("-start_time")
            .annotate(oldest_open=models.Subquery(oldest_open.values("start_time")[:1]))
            .values_list("start_time", "oldest_open")
            .first()
        )
        if found is None:
            return None
        newest, oldest = found
        return oldest if oldest is not None else newest + self.source().DURATION

    def get_late_arrivals(
        self, arrived_after: datetime, arrived_until: datetime, time_before: datetime
    ) -> Iterable[tuple[datetime, datetime]]:
        """(start, calculated_at + margin) of source frames recalculated in the window.

        A frame calculated the first time is no arrival: the rollup frames over
        it are created only once it is calculated. Reads the index of
        recalculated frames: the cost follows the recalculations.
        """
        margin = commit_margin()
        return (
            self.frames()
            .filter(
                states.CALCULATED,
                states.RECOMPUTED,
                calculated_at__gt=arrived_after - margin,
                calculated_at__lte=arrived_until - margin,
                start_time__lt=time_before,
            )
            .annotate(arrived=models.F("calculated_at") + margin)
            .values_list("start_time", "arrived")
        )

    @classmethod
    def reports_late_arrivals(cls) -> bool:
        return True  # the source frames' recalculations

    def delete_before(self, cutoff_datetime: datetime | None) -> int:
        return 0  # a rollup never deletes its source frames

    def count_before(self, cutoff_datetime: datetime | None) -> int:
        return 0


def is_rollup(frame_class: Any) -> bool:
    """True when ``frame_class`` reads another frame model (its stream is a FrameStream)."""
    stream_class = getattr(frame_class, "STREAM_CLASS", None)
    return isinstance(stream_class, type) and issubclass(stream_class, FrameStream)


def held_back_by(frame_class: Any) -> BaseTimeFrame | None:
    """The oldest source frame not calculated, which the rollup cannot pass; else None."""
    if not is_rollup(frame_class):
        return None
    source = frame_class.STREAM_CLASS.source()
    return source._default_manager.filter(states.NOT_CALCULATED).order_by("start_time").first()


def describe_hold(frame: BaseTimeFrame | None) -> str | None:
    """``"DemoTimeFrame 2026-01-01 00:00:15+0000 (failed)"``, or None."""
    return None if frame is None else str(frame)


def levels(frame_class: Any) -> list[Any]:
    """``frame_class`` and its sources, rollup first: [HourFrame, MinuteFrame, DemoTimeFrame]."""
    chain = [frame_class]
    while is_rollup(chain[-1]) and len(chain) < 32:
        chain.append(chain[-1].STREAM_CLASS.source())
    return chain
