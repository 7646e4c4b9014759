"""Frame calculation: claim due frames, run the user's code, record the outcome.

Frames are claimed with ``FOR UPDATE SKIP LOCKED`` inside the transaction that
calculates them, a batch at a time. Each frame runs in its own savepoint: a
``calculate()`` that raises rolls back its own writes only, and the attempt is
recorded in the same transaction, under the same row lock. The frame's results
and its ``calculated`` mark commit together: a worker that dies mid-batch
leaves its frames pending and unlocked, with none of their writes.

The calculated frames of a batch are stored with one UPDATE at the end of the
batch, in its transaction (:mod:`stream_analysis.batch_store`).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from . import grid, queries
from .batch_store import bulk_storable, reload_frames, store_frames, store_row
from .models import BaseTimeFrame
from .settings import app_settings
from .streams import AbstractStream

logger = logging.getLogger(__name__)


@dataclass
class DrainResult:
    """What one calculate run did."""

    calculated: int = 0
    retrying: int = 0
    failed: int = 0
    #: True when it stopped with frames still due (time budget used up).
    more_due: bool = False
    #: Set when it stopped because a frame was interrupted (time limit).
    interrupted: bool = False

    def add(self, batch: BatchOutcome) -> None:
        self.calculated += batch.calculated
        self.retrying += batch.retrying
        self.failed += batch.failed
        self.interrupted = self.interrupted or batch.interruption is not None
        self.more_due = self.more_due or batch.out_of_time


@dataclass
class BatchOutcome:
    """What calculating one claimed batch did."""

    calculated: int = 0
    retrying: int = 0
    failed: int = 0
    #: Frames whose calculate() ran or was interrupted, in claim order.
    processed: int = 0
    #: Calculated frames not stored yet: rows for :func:`store_frames`.
    rows: list[list[Any]] = field(default_factory=list)
    #: The frame whose calculate() was interrupted, and the interrupt.
    interruption: tuple[BaseTimeFrame, BaseException] | None = None
    #: True when the time budget ran out before every claimed frame was run:
    #: the rest are released, still pending, when the batch commits.
    out_of_time: bool = False


def claim_frames(frame_class: type[BaseTimeFrame], limit: int) -> list[BaseTimeFrame]:
    """Lock and return up to ``limit`` due frames, newest first (needs a transaction).

    Newest first keeps live frames fresh while a long backfill drains behind them.
    """
    return list(
        frame_class._default_manager.raw(
            queries.query("claim_frames", frame_class), {"limit": limit}
        )
    )


def run_frame(frame: BaseTimeFrame, stream: AbstractStream) -> None:
    """get_stream_data → calculate → cleanup; set timings and the calculated mark.

    The frame is not saved: the caller stores it in the same transaction.
    """
    # calculated_at is when the data was read: an item stamped as arrived after
    # it may have been missed, which is what RECOMPUTE_LATE compares against.
    read_at = timezone.now()
    started = time.perf_counter()
    frame.calculate(stream.get_stream_data(frame.start_time, frame.end_time))
    analysed = time.perf_counter()
    frame.cleanup()
    frame.analysis_time = analysed - started
    frame.cleanup_time = time.perf_counter() - analysed
    frame.calculated = True
    frame.calculated_at = read_at
    frame.attempts += 1
    frame.next_attempt_at = None
    frame.last_error = ""


def record_failure(frame: BaseTimeFrame, error: BaseException, now: datetime) -> bool:
    """Count the attempt and keep its traceback; True when it was the last attempt."""
    attempts = frame.attempts + 1
    last = attempts >= app_settings.MAX_ATTEMPTS
    delay = grid.retry_delay(attempts, app_settings.RETRY_BACKOFF, app_settings.RETRY_BACKOFF_MAX)
    type(frame)._default_manager.filter(pk=frame.pk).update(
        attempts=attempts,
        failed=last,
        next_attempt_at=None if last else now + delay,
        last_error="".join(traceback.format_exception(error)),
    )
    return last


def calculate_frame(
    frame: BaseTimeFrame,
    stream: AbstractStream,
    outcome: BatchOutcome,
    interrupts: tuple[type[BaseException], ...],
    *,
    bulk: bool,
) -> bool:
    """Run one claimed frame in a savepoint. Returns False if the run must stop.

    With ``bulk`` the frame's values are left in ``outcome.rows`` for the batch's
    UPDATE; otherwise the frame is saved with ``save()`` inside its savepoint.
    """
    outcome.processed += 1
    attempts = frame.attempts
    caught: tuple[type[BaseException], ...] = (Exception, *interrupts)
    try:
        with transaction.atomic():
            run_frame(frame, stream)
            row = store_row(frame) if bulk else None
            if row is None:
                frame.save(force_update=True)
    except caught as error:
        # A save that failed after run_frame() must not count the attempt twice.
        frame.attempts, frame.calculated = attempts, False
        fail_frame(frame, error, outcome, interrupts)
        return outcome.interruption is None
    outcome.calculated += 1
    if row is not None:
        outcome.rows.append(row)
    return True


def fail_frame(
    frame: BaseTimeFrame,
    error: BaseException,
    outcome: BatchOutcome,
    interrupts: tuple[type[BaseException], ...],
) -> None:
    """Record a failed attempt (its savepoint is rolled back already)."""
    last = record_failure(frame, error, timezone.now())
    _log_failure(frame, error, last)
    outcome.failed += last
    outcome.retrying += not last
    if isinstance(error, interrupts):
        outcome.interruption = (frame, error)


def calculate_each(
    claimed: Sequence[BaseTimeFrame],
    stream: AbstractStream,
    outcome: BatchOutcome,
    interrupts: tuple[type[BaseException], ...],
    *,
    bulk: bool,
    deadline: float | None = None,
) -> None:
    """Run the claimed frames in order; stop at an interrupt, or past ``deadline``."""
    for index, frame in enumerate(claimed):
        if deadline is not None and index and time.monotonic() >= deadline:
            outcome.out_of_time = True
            return
        if not calculate_frame(frame, stream, outcome, interrupts, bulk=bulk):
            return


def calculate_claimed(
    frame_class: type[BaseTimeFrame],
    claimed: Sequence[BaseTimeFrame],
    stream: AbstractStream,
    interrupts: tuple[type[BaseException], ...],
    deadline: float | None = None,
) -> BatchOutcome:
    """Calculate claimed frames, each in its own savepoint; store them with one UPDATE.

    Past ``deadline`` the frames not yet run are left pending (released at commit).

    The UPDATE runs after the last frame, in the batch's transaction, so each
    frame's results still commit with its calculate() writes. If the table
    rejects a result (NULL in a NOT NULL column, a string too long, a failed
    constraint), the whole batch is rolled back and calculated again saving each
    frame in its own savepoint: then only the offending frame fails, and the
    other frames' calculate() runs a second time (only one run's writes commit).
    """
    outcome = BatchOutcome()
    if not bulk_storable(frame_class):
        calculate_each(claimed, stream, outcome, interrupts, bulk=False, deadline=deadline)
        return outcome
    try:
        with transaction.atomic():
            calculate_each(claimed, stream, outcome, interrupts, bulk=True, deadline=deadline)
            store_frames(frame_class, outcome.rows)
    except DatabaseError as error:
        _log_store_failure(frame_class, error)
        return recalculate_saving_each(frame_class, claimed, stream, outcome, interrupts)
    return outcome


def recalculate_saving_each(
    frame_class: type[BaseTimeFrame],
    claimed: Sequence[BaseTimeFrame],
    stream: AbstractStream,
    first: BatchOutcome,
    interrupts: tuple[type[BaseException], ...],
) -> BatchOutcome:
    """Redo what a failed store rolled back; an interrupted frame is not run again."""
    outcome = BatchOutcome(out_of_time=first.out_of_time)
    fresh = reload_frames(frame_class, claimed[: first.processed])
    ran = fresh[:-1] if first.interruption is not None else fresh
    calculate_each(ran, stream, outcome, interrupts, bulk=False)
    if first.interruption is not None and outcome.interruption is None:
        fail_frame(fresh[-1], first.interruption[1], outcome, interrupts)
    return outcome


def calculate_batch(
    frame_class: type[BaseTimeFrame],
    result: DrainResult,
    *,
    batch_size: int,
    interrupts: tuple[type[BaseException], ...] = (),
    deadline: float | None = None,
) -> int:
    """Claim a batch and calculate it in one transaction. Returns frames claimed."""
    from . import aggregates, batch_read

    if aggregates.has_aggregates(frame_class):
        with queries.table_required(frame_class):
            return aggregates.aggregate_batch(
                frame_class,
                result,
                batch_size=batch_size,
                interrupts=interrupts,
                deadline=deadline,
            )
    stream = frame_class.get_stream()
    calculate = calculate_claimed
    if batch_read.uses_batch_reads(frame_class, stream):
        calculate = batch_read.calculate_claimed_reading_by_run
    with queries.table_required(frame_class), transaction.atomic():
        claimed = claim_frames(frame_class, batch_size)
        outcome = calculate(frame_class, claimed, stream, interrupts, deadline)
    result.add(outcome)
    return len(claimed)


def calculate_due_frames(
    frame_class: type[BaseTimeFrame],
    *,
    deadline: float,
    batch_size: int | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
    stop_requested: Callable[[], bool] | None = None,
) -> DrainResult:
    """Calculate due frames, a batch per transaction, until none is due or time is up.

    ``deadline`` is a ``time.monotonic()`` value, checked between frames too: a
    run lasts about the budget plus one frame, whatever the batch size.
    ``interrupts`` are exception types (such as a worker's time-limit interrupt)
    that are recorded as a failed attempt and then stop the run. A frame model
    whose table is missing raises ConfigurationError, naming the fix.
    ``stop_requested()`` true (a worker shutting down) ends the run once the batch
    under way has committed, with ``more_due`` set: no further batch is claimed.
    """
    result = DrainResult()
    size = batch_size or default_batch_size(frame_class)
    while True:
        claimed = calculate_batch(
            frame_class, result, batch_size=size, interrupts=interrupts, deadline=deadline
        )
        if result.interrupted or result.more_due or claimed < size:
            return result
        if time.monotonic() >= deadline or (stop_requested is not None and stop_requested()):
            result.more_due = True
            return result


def default_batch_size(frame_class: type[BaseTimeFrame]) -> int:
    """AGGREGATE_BATCH_SIZE for frames computed by SQL, BATCH_READ_BATCH_SIZE for
    BATCH_READ frames, BATCH_SIZE for the others."""
    from . import aggregates

    if aggregates.has_aggregates(frame_class):
        return aggregates.batch_size()
    if getattr(frame_class, "BATCH_READ", False) is True:
        return int(app_settings.BATCH_READ_BATCH_SIZE)
    return int(app_settings.BATCH_SIZE)


def next_retry_at(frame_class: type[BaseTimeFrame]) -> datetime | None:
    """When the earliest frame waiting for a retry becomes due, if any."""
    return queries.fetch_value("next_retry_at", {}, frame_class)


def _log_store_failure(frame_class: type[BaseTimeFrame], error: DatabaseError) -> None:
    logger.warning(
        "storing a batch of %s failed (%r): calculating it again, saving frame by frame",
        frame_class.__name__,
        error,
        extra={"action": "store_failed", "frame_class": frame_class.__name__},
    )


def _log_failure(frame: BaseTimeFrame, error: BaseException, last: bool) -> None:
    logger.warning(
        "calculate() failed for %s%s: %r",
        frame,
        " (last attempt, marked failed)" if last else ", will retry",
        error,
        extra={"action": "calculate_failed", "frame_class": type(frame).__name__},
    )
