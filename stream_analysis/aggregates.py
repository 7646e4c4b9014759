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
from .model_stream import ModelStream
from .models import BaseTimeFrame
from .settings import app_settings

logger = logging.getLogger(__name__)

#: Column names of the grouped SELECT: never a user's field name, so never a clash.
BUCKET = "stream_analysis_bucket"
ALIAS = "stream_analysis_agg_{}"
#: The largest AGGREGATE_BATCH_SIZE used, whatever the setting says.
MAX_BATCH_SIZE = 100_000

#: A claimed frame: its primary key and start.
Key = tuple[Any, datetime]


class DateBin(models.Func):
    """``date_bin(stride, source, origin)``: the start of the stride holding ``source``."""

    function = "date_bin"
    output_field = models.DateTimeField()


def has_aggregates(frame_class: type[BaseTimeFrame]) -> bool:
    """True when the frame class is computed by SQL (it sets ``AGGREGATES``)."""
    return bool(getattr(frame_class, "AGGREGATES", None))


def batch_size() -> int:
    """``STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE``, capped at :data:`MAX_BATCH_SIZE`."""
    return max(1, min(int(app_settings.AGGREGATE_BATCH_SIZE), MAX_BATCH_SIZE))


def claim_keys(frame_class: type[BaseTimeFrame], limit: int) -> list[Key]:
    """Lock up to ``limit`` due frames (``claim_frames``); their keys and starts."""
    with connection.cursor() as cursor:
        cursor.execute(queries.query("claim_frames", frame_class), {"limit": limit})
        names = [column.name for column in cursor.description]
        pk = names.index(frame_class._meta.pk.column)
        start = names.index(frame_class._meta.get_field("start_time").column)
        return [(row[pk], row[start]) for row in cursor.fetchall()]


def grouped_rows(
    frame_class: type[BaseTimeFrame], stream: ModelStream, starts: Sequence[datetime]
) -> models.QuerySet[Any]:
    """The stream rows of the frames starting at ``starts``, grouped by frame, aggregated."""
    duration = frame_class.DURATION
    spans = models.Q()
    for first, end in grid.contiguous_runs(starts, duration):
        spans |= models.Q(**{f"{stream.time_field}__gte": first, f"{stream.time_field}__lt": end})
    bucket = DateBin(
        models.Value(duration, output_field=models.DurationField()),
        models.F(stream.time_field),
        models.Value(min(starts), output_field=models.DateTimeField()),
    )
    return (
        stream.get_queryset()
        .filter(spans)
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
    frame_class: type[BaseTimeFrame], stream: ModelStream, keys: Sequence[Key]
) -> tuple[str, list[Any]]:
    """The ``aggregate_frames`` statement for the claimed frames ``keys``, and its parameters."""
    quote = connection.ops.quote_name
    types = column_types(frame_class)
    grouped_sql, grouped_params = grouped_rows(
        frame_class, stream, [start for _, start in keys]
    ).query.sql_with_params()
    assignments = ", ".join(
        f"{quote(str(field.column))} = CASE WHEN source.{quote(BUCKET)} IS NULL "
        f"THEN %s::{types[str(field.column)]} ELSE source.{quote(ALIAS.format(i))} END"
        for i, field in enumerate(result_fields(frame_class))
    )
    sql = queries.query(
        "aggregate_frames",
        frame_class,
        assignments=assignments,
        grouped=grouped_sql,
        bucket=quote(BUCKET),
        pk=quote(str(frame_class._meta.pk.column)),
    )
    params = [
        *empty_values(frame_class, stream),
        len(keys),
        *grouped_params,
        [pk for pk, _ in keys],
    ]
    return sql, params


def aggregate_frames(
    frame_class: type[BaseTimeFrame], stream: ModelStream, keys: Sequence[Key]
) -> int:
    """Fill and mark calculated the claimed frames ``keys`` with one statement."""
    sql, params = aggregate_statement(frame_class, stream, keys)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != len(keys):
            raise DatabaseError(f"{len(keys) - cursor.rowcount} claimed frames are gone.")
        return cursor.rowcount


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
    assert isinstance(stream, ModelStream)  # manage.py check says so (E033)
    with transaction.atomic():
        keys = claim_keys(frame_class, batch_size)
        outcome = aggregate_claimed(frame_class, stream, keys, interrupts, deadline)
    result.add(outcome)
    return len(keys)


def aggregate_claimed(
    frame_class: type[BaseTimeFrame],
    stream: ModelStream,
    keys: Sequence[Key],
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None,
) -> BatchOutcome:
    """One statement for the batch; if it fails, one statement per frame."""
    outcome = BatchOutcome(processed=len(keys))
    if not keys:
        return outcome
    try:
        with transaction.atomic():
            outcome.calculated = aggregate_frames(frame_class, stream, keys)
    except DatabaseError as error:
        _log_batch_failure(frame_class, len(keys), error)
        return aggregate_each(frame_class, stream, keys, interrupts, deadline)
    except interrupts as error:
        # Rolled back: the frames stay pending, no attempt counted.
        frame = frame_class._default_manager.get(pk=keys[0][0])
        outcome.interruption = (frame, error)
    return outcome


def aggregate_each(
    frame_class: type[BaseTimeFrame],
    stream: ModelStream,
    keys: Sequence[Key],
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None,
) -> BatchOutcome:
    """Run the statement frame by frame, each in its own savepoint; a failure fails one frame."""
    outcome = BatchOutcome()
    caught: tuple[type[BaseException], ...] = (Exception, *interrupts)
    frames = frame_class._default_manager.in_bulk([pk for pk, _ in keys])
    for index, key in enumerate(keys):
        if deadline is not None and index and time.monotonic() >= deadline:
            outcome.out_of_time = True
            break
        outcome.processed += 1
        try:
            with transaction.atomic():
                outcome.calculated += aggregate_frames(frame_class, stream, [key])
        except caught as error:
            fail_frame(frames[key[0]], error, outcome, interrupts)
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
