"""The set-based path: frames with ``AGGREGATES`` are computed by PostgreSQL, a batch at a time.

A batch of due frames is claimed with the same ``FOR UPDATE SKIP LOCKED``
statement as every frame (``claim_frames``), then filled by ONE statement in
the same transaction (``aggregate_frames`` in ``sql/queries.sql``)::

    UPDATE frames SET <field> = <aggregate>, calculated = true, …
    FROM claimed frames LEFT JOIN (
        SELECT date_bin(DURATION, time, <first start>) AS bucket, <aggregates>
        FROM <the ModelStream's get_queryset()> WHERE time in the frames' spans
        GROUP BY bucket) ON bucket = start_time

The grouped SELECT is a QuerySet compiled by the ORM: the user's aggregate
expressions become SQL the way Django writes them, never text pasted in.
``date_bin`` with a frame start as origin reproduces the frame grid exactly
(epoch alignment and OFFSET are already in every frame start; timestamptz
arithmetic has no time zone). A frame with no rows gets what its aggregates
give an empty set (Count 0, the others NULL unless wrapped in Coalesce).

If the statement fails (a value the column refuses, an error in an
expression), the batch is rolled back to its savepoint and each frame is run
on its own, so only the offending frame records a failed attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, models, transaction

from . import grid, queries
from .batch_store import column_types
from .calculation import BatchOutcome, DrainResult, fail_frame
from .exceptions import ConfigurationError
from .expressions import DateBin
from .model_stream import ModelStream
from .models import BaseTimeFrame
from .settings import app_settings

logger = logging.getLogger(__name__)

#: Column names of the grouped SELECT: never a user's field name, so never a clash.
BUCKET = "stream_analysis_bucket"
ALIAS = "stream_analysis_agg_{}"
#: The largest AGGREGATE_BATCH_SIZE used, whatever the setting says.
MAX_BATCH_SIZE = 100_000

#: Claimed back-to-back frames: the first one's start, the last one's end, how many.
Run = tuple[datetime, datetime, int]


def has_aggregates(frame_class: type[BaseTimeFrame]) -> bool:
    """True when the frame class is computed by SQL (it sets ``AGGREGATES``)."""
    return bool(getattr(frame_class, "AGGREGATES", None))


def batch_size() -> int:
    """``STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE``, capped at :data:`MAX_BATCH_SIZE`."""
    return max(1, min(int(app_settings.AGGREGATE_BATCH_SIZE), MAX_BATCH_SIZE))


def claim_runs(frame_class: type[BaseTimeFrame], limit: int) -> list[Run]:
    """Lock up to ``limit`` due frames (``claim_frames``); return them as runs.

    Only the runs cross to Python, not a row per frame: a batch of thousands of
    frames usually is one run.
    """
    claim = queries.query("claim_frames", frame_class).rstrip(";")
    sql = queries.query("claim_frame_runs", frame_class, claim=claim)
    with connection.cursor() as cursor:
        params: dict[str, Any] = {"limit": limit, "duration": frame_class.DURATION}
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]


def frames_in(runs: Sequence[Run], field: str = "start_time") -> models.Q:
    """The rows whose ``field`` lies in one of the runs."""
    spans = models.Q()
    for first, end, _ in runs:
        spans |= models.Q(**{f"{field}__gte": first, f"{field}__lt": end})
    return spans


def grouped_rows(
    frame_class: type[BaseTimeFrame], stream: ModelStream, runs: Sequence[Run]
) -> models.QuerySet[Any]:
    """The stream rows of the runs' frames, grouped by frame and aggregated."""
    bucket = DateBin(
        models.Value(frame_class.DURATION, output_field=models.DurationField()),
        models.F(stream.time_field),
        # A frame start: every row read is at or after it, so the grid is the frames'.
        models.Value(runs[0][0], output_field=models.DateTimeField()),
    )
    return (
        stream.get_queryset()
        .filter(frames_in(runs, stream.time_field))
        .annotate(**{BUCKET: bucket})
        .values(BUCKET)
        .annotate(**aliased(frame_class))
        .order_by()
    )


def aliased(frame_class: type[BaseTimeFrame]) -> dict[str, Any]:
    """The frame class's aggregates under column names that cannot clash."""
    return {ALIAS.format(i): expression for i, expression in enumerate(aggregates(frame_class))}


def aggregates(frame_class: type[BaseTimeFrame]) -> list[Any]:
    return list((frame_class.AGGREGATES or {}).values())


def result_fields(frame_class: type[BaseTimeFrame]) -> list[models.Field[Any, Any]]:
    return [frame_class._meta.get_field(name) for name in frame_class.AGGREGATES or {}]  # type: ignore[misc]


def empty_values(frame_class: type[BaseTimeFrame], stream: ModelStream) -> list[Any]:
    """What each aggregate gives a frame without rows, as its result field stores it.

    Asked of PostgreSQL over an empty time range, so it is exactly SQL's
    empty-group value, whatever the expression.
    """
    moment = grid.EPOCH
    empty = stream.get_queryset().filter(
        **{f"{stream.time_field}__gte": moment, f"{stream.time_field}__lt": moment}
    )
    values = empty.aggregate(**aliased(frame_class))
    return [
        field.get_db_prep_save(values[ALIAS.format(i)], connection)
        for i, field in enumerate(result_fields(frame_class))
    ]


def aggregate_statement(
    frame_class: type[BaseTimeFrame], stream: ModelStream, runs: Sequence[Run]
) -> tuple[str, list[Any]]:
    """The ``aggregate_frames`` statement for the claimed ``runs``, and its parameters."""
    quote = connection.ops.quote_name
    types = column_types(frame_class)
    grouped_sql, grouped_params = grouped_rows(frame_class, stream, runs).query.sql_with_params()
    assignments = ", ".join(
        f"{quote(str(field.column))} = CASE WHEN source.{quote(BUCKET)} IS NULL "
        f"THEN %s::{types[str(field.column)]} ELSE source.{quote(ALIAS.format(i))} END"
        for i, field in enumerate(result_fields(frame_class))
    )
    start = quote("start_time")
    sql = queries.query(
        "aggregate_frames",
        frame_class,
        assignments=assignments,
        grouped=grouped_sql,
        bucket=quote(BUCKET),
        pk=quote(str(frame_class._meta.pk.column)),
        runs=" OR ".join([f"(frame.{start} >= %s AND frame.{start} < %s)"] * len(runs)),
    )
    params = [
        *empty_values(frame_class, stream),
        sum(count for _, _, count in runs),
        *grouped_params,
        *(bound for first, end, _ in runs for bound in (first, end)),
    ]
    return sql, params


def aggregate_frames(
    frame_class: type[BaseTimeFrame], stream: ModelStream, runs: Sequence[Run]
) -> int:
    """Fill and mark calculated the frames of the claimed ``runs`` with one statement."""
    sql, params = aggregate_statement(frame_class, stream, runs)
    claimed = sum(count for _, _, count in runs)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != claimed:
            raise DatabaseError(f"{claimed} frames claimed, {cursor.rowcount} filled.")
        return claimed


def aggregate_batch(
    frame_class: type[BaseTimeFrame],
    result: DrainResult,
    *,
    batch_size: int,
    interrupts: tuple[type[BaseException], ...] = (),
    deadline: float | None = None,
) -> int:
    """Claim a batch and fill it with one statement, in one transaction. Returns frames claimed."""
    stream = frame_class.get_stream()
    if not isinstance(stream, ModelStream):
        raise ConfigurationError(
            f"{frame_class.__name__}.AGGREGATES needs a ModelStream, but its STREAM_CLASS "
            f"{type(stream).__name__} is not one. Run 'manage.py check' (E033)."
        )
    with transaction.atomic():
        runs = claim_runs(frame_class, batch_size)
        outcome = aggregate_claimed(frame_class, stream, runs, interrupts, deadline)
    result.add(outcome)
    return sum(count for _, _, count in runs)


def aggregate_claimed(
    frame_class: type[BaseTimeFrame],
    stream: ModelStream,
    runs: Sequence[Run],
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None,
) -> BatchOutcome:
    """One statement for the batch; if it fails, one statement per frame."""
    outcome = BatchOutcome(processed=sum(count for _, _, count in runs))
    if not runs:
        return outcome
    try:
        with transaction.atomic():
            outcome.calculated = aggregate_frames(frame_class, stream, runs)
    except DatabaseError as error:
        _log_batch_failure(frame_class, outcome.processed, error)
        return aggregate_each(frame_class, stream, runs, interrupts, deadline)
    except interrupts as error:
        # Rolled back: the frames stay pending, no attempt counted.
        frame = frame_class._default_manager.filter(frames_in(runs)).first()
        if frame is not None:
            outcome.interruption = (frame, error)
    return outcome


def aggregate_each(
    frame_class: type[BaseTimeFrame],
    stream: ModelStream,
    runs: Sequence[Run],
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None,
) -> BatchOutcome:
    """Run the statement frame by frame, each in its own savepoint; a failure fails one frame."""
    outcome = BatchOutcome()
    caught: tuple[type[BaseException], ...] = (Exception, *interrupts)
    frames = frame_class._default_manager.filter(frames_in(runs)).order_by("-start_time")
    for index, frame in enumerate(frames):
        if deadline is not None and index and time.monotonic() >= deadline:
            outcome.out_of_time = True
            break
        outcome.processed += 1
        try:
            with transaction.atomic():
                run = (frame.start_time, frame.end_time, 1)
                outcome.calculated += aggregate_frames(frame_class, stream, [run])
        except caught as error:
            fail_frame(frame, error, outcome, interrupts)
            if outcome.interruption is not None:
                break
    return outcome


def _log_batch_failure(frame_class: type[BaseTimeFrame], size: int, error: BaseException) -> None:
    logger.warning(
        "the AGGREGATES statement for %d frames of %s failed (%r): running it frame by frame",
        size,
        frame_class.__name__,
        error,
        extra={"action": "aggregate_failed", "frame_class": frame_class.__name__},
    )
