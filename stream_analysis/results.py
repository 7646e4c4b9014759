"""Results of any frame model over a time range: a series to chart, and exports.

Shared by the admin's results page and :mod:`stream_analysis.views` (the JSON of
a range for a front end of one's own).

- :func:`series` reads one numeric field as one point per bucket of the range,
  from the coarsest-enough level: a rollup of the frame model (see
  :mod:`stream_analysis.rollups`) when one exists and the range is long, and
  buckets grouped in the database (``date_bin``) when even that has too many
  frames. A bucket with no calculated frame is a gap (``value`` None), and says
  how many of its frames are missing, unfinished or failed.
- :func:`csv_rows` and :func:`json_chunks` stream the frames of a range through
  a server-side cursor (``iterator(chunk_size)``): memory stays bounded, however
  many frames the range holds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.module_loading import import_string

from . import rollups, states
from .expressions import start_bucket
from .grid import EPOCH, frame_start
from .models import framework_fields
from .settings import app_settings

NUMERIC = (models.IntegerField, models.FloatField, models.DecimalField)
#: Rows fetched per round trip of the export's server-side cursor.
CHUNK_SIZE = 2000
#: Points of a chart, at most (buckets of the range).
MAX_POINTS = 600


def numeric_fields(frame_class: Any) -> list[str]:
    """The numeric result fields of ``frame_class`` (declared order), then ``analysis_time``."""
    found = [
        field.name
        for field in frame_class._meta.concrete_fields
        if isinstance(field, NUMERIC) and field.name not in framework_fields()
    ]
    return [*found, "analysis_time"]


def export_fields(frame_class: Any) -> list[str]:
    """Columns of an export: ``start_time``, the result fields, then the frame's state."""
    results = [
        field.name
        for field in frame_class._meta.concrete_fields
        if field.name not in framework_fields()
    ]
    state = ["calculated", "failed", "missing_data", "calculated_at", "analysis_time"]
    trail = ["recomputes", "recompute_reason", "late_items"]
    return ["start_time", *results, *state, *trail]


def frame_classes() -> list[Any]:
    """The frame models of the configured tasks (whose results may be read), by task key."""
    found = []
    for task in app_settings.tasks().values():
        try:
            frame_class = import_string(task.frame_class_path)
        except ImportError:
            continue  # manage.py check reports it
        if frame_class not in found:
            found.append(frame_class)
    return found


def find_frame_class(label: str) -> Any | None:
    """The configured frame model named ``app_label.modelname`` (case-insensitive), or None."""
    for frame_class in frame_classes():
        if frame_class._meta.label_lower == label.lower():
            return frame_class
    return None


def rollups_of(frame_class: Any) -> list[Any]:
    """The configured rollups over ``frame_class`` (directly or through others), finest first."""
    found = [
        candidate
        for candidate in frame_classes()
        if candidate is not frame_class and frame_class in rollups.levels(candidate)
    ]
    return sorted(found, key=lambda candidate: candidate.DURATION)


def frames_between(frame_class: Any, start: datetime, end: datetime) -> models.QuerySet[Any]:
    """Frames starting in ``[start, end)``, oldest first."""
    return frame_class._default_manager.filter(start_time__gte=start, start_time__lt=end).order_by(
        "start_time"
    )


def default_range(frame_class: Any, frames: int = 500) -> tuple[datetime, datetime] | None:
    """The last ``frames`` frames' range (from the oldest frame if fewer), up to the newest
    frame's end; None without frames."""
    end = frame_class.get_latest_end_time()
    if end is None:
        return None
    return default_start(frame_class, end, frames), end


def default_start(frame_class: Any, end: datetime, frames: int = 500) -> datetime:
    """``frames`` frames before ``end``, but not before the oldest frame."""
    earliest = frame_class.get_earliest_start_time()
    start = end - frames * frame_class.DURATION
    return start if earliest is None or earliest >= end else max(start, earliest)


class BadRange(ValueError):
    """A range's bounds that cannot be read; the message names the expected format."""


def parse_moment(text: str, name: str) -> datetime:
    """``text`` (ISO 8601 date or date-time) as an aware datetime; naive means local time."""
    text = text.strip()
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            moment = None if day is None else datetime(day.year, day.month, day.day)
    except ValueError:
        moment = None
    if moment is None:
        raise BadRange(
            f"{name}={text!r} is not a date or time: write ISO 8601, "
            "e.g. 2026-01-01 or 2026-01-01T12:00:00+00:00."
        )
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def parse_range(params: Any, frame_class: Any) -> tuple[datetime, datetime] | None:
    """``start`` and ``end`` of a request's query (either may be left out); None: no frames.

    Left out, ``end`` is the newest frame's end and ``start`` 500 frames before ``end``
    (or the oldest frame's start, if later).
    """
    start_text, end_text = params.get("start", ""), params.get("end", "")
    fallback = default_range(frame_class)
    if fallback is None and not (start_text and end_text):
        return None
    end = parse_moment(end_text, "end") if end_text else fallback[1]  # type: ignore[index]
    start = parse_moment(start_text, "start") if start_text else default_start(frame_class, end)
    if start >= end:
        raise BadRange(f"start ({start.isoformat()}) must be before end ({end.isoformat()}).")
    return start, end


# -- the chart's series -------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One bucket of a series: the mean of its calculated frames' values, or a gap."""

    start: datetime
    #: Mean over the bucket's calculated frames; None when it has none (a gap).
    value: float | None
    calculated: int
    unfinished: int
    failed: int
    #: Frames the bucket should hold but that do not exist (not created, or deleted).
    missing: int

    @property
    def complete(self) -> bool:
        return not (self.unfinished or self.failed or self.missing)


@dataclass(frozen=True)
class Series:
    """A field of one level over a range, one :class:`Point` per bucket."""

    frame_class: Any
    field: str
    start: datetime
    end: datetime
    bucket: timedelta
    points: list[Point]

    @property
    def level(self) -> str:
        return str(self.frame_class.__name__)


def pick_level(frame_class: Any, field: str, start: datetime, end: datetime, limit: int) -> Any:
    """The finest of ``frame_class`` and its rollups (having ``field`` and frames in the range)
    with at most ``limit`` frames in the range; else the coarsest one with frames there."""
    levels = [frame_class] + [
        rollup
        for rollup in rollups_of(frame_class)
        if field in numeric_fields(rollup) and frames_between(rollup, start, end).exists()
    ]
    for level in levels:
        if (end - start) / level.DURATION <= limit:
            return level
    return levels[-1]


def bucket_width(duration: timedelta, start: datetime, end: datetime, limit: int) -> timedelta:
    """The smallest whole number of frames per bucket that makes at most ``limit`` buckets."""
    frames = max(1, -(-(end - start) // duration))  # ceil
    return duration * max(1, -(-frames // limit))


def series(
    frame_class: Any, field: str, start: datetime, end: datetime, limit: int = MAX_POINTS
) -> Series:
    """``field`` over ``[start, end)``: at most about ``limit`` points, one grouped query."""
    if field not in numeric_fields(frame_class):
        raise ValueError(f"{frame_class.__name__} has no numeric field {field!r}.")
    level = pick_level(frame_class, field, start, end, limit)
    width = bucket_width(level.DURATION, start, end, limit)
    origin = EPOCH + level.OFFSET
    first = frame_start(start, width, level.OFFSET)
    rows = (
        frames_between(level, first, end)
        .annotate(bucket=start_bucket(width, origin))
        .order_by()
        .values("bucket")
        .annotate(
            n_value=models.Avg(field, filter=states.CALCULATED),
            n_calculated=models.Count("pk", filter=states.CALCULATED),
            n_unfinished=models.Count("pk", filter=states.UNFINISHED),
            n_failed=models.Count("pk", filter=states.FAILED),
        )
    )
    found = {row.pop("bucket"): row for row in rows}
    per_bucket = width // level.DURATION
    points = []
    moment = first
    while moment < end:
        points.append(point(moment, found.get(moment), per_bucket))
        moment += width
    return Series(level, field, first, moment, width, points)


def point(start: datetime, row: dict[str, Any] | None, per_bucket: int) -> Point:
    """The bucket starting at ``start`` from its grouped row (None: no frame at all)."""
    if row is None:
        return Point(start, None, 0, 0, 0, missing=per_bucket)
    value = None if row["n_value"] is None else float(row["n_value"])
    calculated, unfinished, failed = (
        int(row[key]) for key in ("n_calculated", "n_unfinished", "n_failed")
    )
    missing = per_bucket - calculated - unfinished - failed
    return Point(start, value, calculated, unfinished, failed, missing)


# -- exports ---------------------------------------------------------------------------


def rows(frame_class: Any, start: datetime, end: datetime) -> Iterator[tuple[Any, ...]]:
    """The export's rows of the range, read ``CHUNK_SIZE`` at a time (server-side cursor)."""
    fields = export_fields(frame_class)
    query = frames_between(frame_class, start, end).values_list(*fields)
    return query.iterator(chunk_size=CHUNK_SIZE)


def plain(value: Any) -> Any:
    """A value as JSON and CSV write it: datetimes in ISO 8601, decimals as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


def batches(frame_class: Any, start: datetime, end: datetime) -> Iterator[list[tuple[Any, ...]]]:
    """:func:`rows` in lists of up to ``CHUNK_SIZE`` (one chunk of the response each)."""
    batch: list[tuple[Any, ...]] = []
    for row in rows(frame_class, start, end):
        batch.append(row)
        if len(batch) == CHUNK_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def csv_rows(frame_class: Any, start: datetime, end: datetime) -> Iterator[str]:
    """The CSV of the range: a header line, then a line per frame (streamed in chunks)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def text() -> str:
        value = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return value

    writer.writerow(export_fields(frame_class))
    yield text()
    for batch in batches(frame_class, start, end):
        writer.writerows(["" if v is None else plain(v) for v in row] for row in batch)
        yield text()


def json_chunks(frame_class: Any, start: datetime, end: datetime) -> Iterator[str]:
    """The JSON of the range, as text chunks (streamed)::

    {"model": "app.frame", "duration": 15.0, "start": ..., "end": ...,
     "fields": [...], "frames": [[...], ...]}

    Each frame is a list of values in ``fields`` order (ISO 8601 times).
    """
    fields = export_fields(frame_class)
    head = {
        "model": frame_class._meta.label_lower,
        "duration": frame_class.DURATION.total_seconds(),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "fields": fields,
    }
    yield json.dumps(head)[:-1] + ', "frames": ['
    separator = ""
    for batch in batches(frame_class, start, end):
        # One dumps() per batch: the list's brackets dropped, its rows joined by ", ".
        yield separator + json.dumps([[plain(v) for v in row] for row in batch])[1:-1]
        separator = ", "
    yield "]}\n"
