"""Batch reads: one stream query per run of claimed frames, for ``BATCH_READ = True`` frames.

Frames are claimed newest first and calculated in that order. When a frame
asks for its data, the whole run of back-to-back claimed frames below it is
read with one query, newest first, at most ``STREAM_ANALYSIS_BATCH_READ_MAX_ROWS``
rows at a time, and split by frame. Each frame then gets the QuerySet
``get_stream_data()`` would give it, already evaluated: iterating, ``len()``,
``count()``, ``exists()`` and indexing use the rows read; ``.filter()``,
``.aggregate()`` and the rest of the QuerySet API build a new query, exactly
as without batch reads. A frame holding more rows than the bound alone gets
its QuerySet unevaluated (it reads itself, as without batch reads).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import models, transaction

from . import grid
from .batch_store import bulk_storable, reload_frames, store_frames, store_row
from .calculation import BatchOutcome, calculate_claimed, fail_frame, run_frame
from .model_stream import ModelStream
from .models import BaseTimeFrame
from .settings import app_settings
from .streams import AbstractStream

logger = logging.getLogger(__name__)


def uses_batch_reads(frame_class: type[BaseTimeFrame], stream: AbstractStream) -> bool:
    """True for ``BATCH_READ = True`` frames on a ModelStream with its own get_stream_data."""
    return (
        getattr(frame_class, "BATCH_READ", False) is True
        and isinstance(stream, ModelStream)
        and type(stream).get_stream_data is ModelStream.get_stream_data
    )


def calculate_claimed_reading_by_run(
    frame_class: type[BaseTimeFrame],
    claimed: Sequence[BaseTimeFrame],
    stream: AbstractStream,
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None = None,
) -> BatchOutcome:
    """Calculate claimed BATCH_READ frames: runs read at once, no savepoint per frame.

    The batch runs in one savepoint and is stored with one UPDATE. If a
    ``calculate()`` raises (or the store fails), the batch is rolled back and run
    again the usual way, each frame in its own savepoint, so only the failing
    frame records an attempt; the frames before it then run twice (only one
    run's writes commit). A time-limit interrupt rolls the batch back and counts
    an attempt for the frame it interrupted only.
    """
    assert isinstance(stream, ModelStream)  # uses_batch_reads() said so
    reader = BatchReadStream(
        stream,
        [frame.start_time for frame in claimed],
        frame_class.DURATION,
        int(app_settings.BATCH_READ_MAX_ROWS),
    )
    if not bulk_storable(frame_class):
        return calculate_claimed(frame_class, claimed, reader, interrupts, deadline)
    outcome = BatchOutcome()
    caught: tuple[type[BaseException], ...] = (Exception, *interrupts)
    try:
        with transaction.atomic():
            run_all(frame_class, claimed, reader, outcome, deadline)
    except caught as error:
        fresh = reload_frames(frame_class, claimed)
        if not isinstance(error, interrupts):
            _log_rerun(frame_class, error)
            return calculate_claimed(frame_class, fresh, reader, interrupts, deadline)
        interrupted = BatchOutcome()
        fail_frame(fresh[max(outcome.processed, 1) - 1], error, interrupted, interrupts)
        return interrupted
    return outcome


def _log_rerun(frame_class: type[BaseTimeFrame], error: BaseException) -> None:
    logger.info(
        "a batch of %s failed (%r): running it again frame by frame",
        frame_class.__name__,
        error,
        extra={"action": "batch_read_rerun", "frame_class": frame_class.__name__},
    )


class NotStorable(Exception):
    """A frame's values need ``save()`` (an expression such as ``F()``)."""


def run_all(
    frame_class: type[BaseTimeFrame],
    claimed: Sequence[BaseTimeFrame],
    reader: AbstractStream,
    outcome: BatchOutcome,
    deadline: float | None,
) -> None:
    """Run every claimed frame (until ``deadline``) and store them with one UPDATE."""
    for index, frame in enumerate(claimed):
        if deadline is not None and index and time.monotonic() >= deadline:
            outcome.out_of_time = True
            break
        outcome.processed += 1
        run_frame(frame, reader)
        row = store_row(frame)
        if row is None:
            raise NotStorable(frame)
        outcome.rows.append(row)
    store_frames(frame_class, outcome.rows)
    outcome.calculated = len(outcome.rows)


class BatchReadStream(AbstractStream):
    """A ModelStream's view whose ``get_stream_data`` is served from reads of whole runs."""

    def __init__(
        self, stream: ModelStream, starts: Sequence[datetime], duration: timedelta, max_rows: int
    ) -> None:
        self.stream = stream
        self.duration = duration
        self.max_rows = max(1, max_rows)
        self.runs = grid.contiguous_runs(starts, duration)
        #: Frame start -> its rows, oldest first; taken out when handed over.
        self.read: dict[datetime, list[Any]] = {}
        #: ModelStream.get_stream_data() without its range filter.
        self.ordered = stream.get_queryset().order_by(stream.time_field, "pk")

    def is_stream_empty(self) -> bool:
        return self.stream.is_stream_empty()

    def get_earliest_stream_time(self) -> datetime | None:
        return self.stream.get_earliest_stream_time()

    def get_latest_stream_time(self) -> datetime | None:
        return self.stream.get_latest_stream_time()

    def delete_before(self, cutoff_datetime: datetime | None) -> int:
        return self.stream.delete_before(cutoff_datetime)

    def count_before(self, cutoff_datetime: datetime | None) -> int:
        return self.stream.count_before(cutoff_datetime)

    def get_stream_data(self, start: datetime, end: datetime) -> models.QuerySet[Any]:
        if end - start == self.duration and start not in self.read:
            self.read_run_down_from(start)
        rows = self.read.pop(start, None) if end - start == self.duration else None
        if rows is None:
            return self.stream.get_stream_data(start, end)
        return self.evaluated(start, end, rows)

    def evaluated(self, start: datetime, end: datetime, rows: list[Any]) -> models.QuerySet[Any]:
        """``get_stream_data(start, end)`` with ``rows`` as its already fetched result.

        Its filter is only compiled if the QuerySet builds a new query (``.filter()``…):
        Django's deferred filter, as related managers use it.
        """
        time_field = self.stream.time_field
        self.ordered._defer_next_filter = True  # type: ignore[attr-defined]
        data = self.ordered.filter(**{f"{time_field}__gte": start, f"{time_field}__lt": end})
        data._result_cache = rows  # type: ignore[attr-defined]
        data._prefetch_done = True  # type: ignore[attr-defined]
        return data

    def run_start(self, start: datetime) -> datetime | None:
        return next((first for first, end in self.runs if first <= start < end), None)

    def read_run_down_from(self, start: datetime) -> None:
        """Read the frames of ``start``'s run from ``start`` down, up to ``max_rows`` rows."""
        low = self.run_start(start)
        if low is None:
            return
        time_field = self.stream.time_field
        rows = list(
            self.stream.in_range(low, start + self.duration).order_by(f"-{time_field}", "-pk")[
                : self.max_rows
            ]
        )
        if len(rows) == self.max_rows:
            # The oldest frame read may be cut short: it is read again on its turn.
            low = grid.frame_start(getattr(rows[-1], time_field), self.duration, low - grid.EPOCH)
            rows = [row for row in rows if getattr(row, time_field) >= low + self.duration]
            low += self.duration
        self.split(rows, low, start)

    def split(self, rows: list[Any], low: datetime, high: datetime) -> None:
        """File ``rows`` (newest first) under the frames ``low`` … ``high``, each oldest first."""
        time_field = self.stream.time_field
        filed: dict[datetime, list[Any]] = {}
        frame = high
        while frame >= low:
            filed[frame] = []
            frame -= self.duration
        frame = high
        for row in rows:
            while getattr(row, time_field) < frame:
                frame -= self.duration
            filed[frame].append(row)
        for frame_rows in filed.values():
            frame_rows.reverse()
        self.read.update(filed)
