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

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import models

from . import grid
from .model_stream import ModelStream
from .models import BaseTimeFrame
from .settings import app_settings
from .streams import AbstractStream


def uses_batch_reads(frame_class: type[BaseTimeFrame], stream: AbstractStream) -> bool:
    """True for ``BATCH_READ = True`` frames on a ModelStream with its own get_stream_data."""
    return (
        getattr(frame_class, "BATCH_READ", False) is True
        and isinstance(stream, ModelStream)
        and type(stream).get_stream_data is ModelStream.get_stream_data
    )


def stream_for(
    frame_class: type[BaseTimeFrame], stream: AbstractStream, claimed: Sequence[BaseTimeFrame]
) -> AbstractStream:
    """The stream the claimed frames read: one that reads by runs when the class opts in."""
    if not claimed or not uses_batch_reads(frame_class, stream):
        return stream
    assert isinstance(stream, ModelStream)
    return BatchReadStream(
        stream,
        [frame.start_time for frame in claimed],
        frame_class.DURATION,
        int(app_settings.BATCH_READ_MAX_ROWS),
    )


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
        data = self.stream.get_stream_data(start, end)
        if end - start != self.duration:
            return data
        if start not in self.read:
            self.read_run_down_from(start)
        rows = self.read.pop(start, None)
        if rows is not None:
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
