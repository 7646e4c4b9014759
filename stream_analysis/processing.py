"""Frame calculation: claim due frames, run the user's code, record the outcome.

Frames are claimed with ``FOR UPDATE SKIP LOCKED`` inside the transaction that
calculates them, a batch at a time. Each frame runs in its own savepoint: a
``calculate()`` that raises rolls back its own writes only, and the attempt is
recorded in the same transaction, under the same row lock. The frame's results
and its ``calculated`` mark commit together: a worker that dies mid-batch
leaves its frames pending and unlocked, with none of their writes.
"""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from . import frames, queries
from .models import BaseTimeFrame
from .settings import app_settings
from .streams import AbstractStream

logger = logging.getLogger(__name__)

BATCH_FIELDS = (
    "calculated",
    "failed",
    "attempts",
    "next_attempt_at",
    "last_error",
    "analysis_time",
    "cleanup_time",
    "calculated_at",
)


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
    errors: list[str] = field(default_factory=list)


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
    """get_stream_data → calculate → cleanup; set timings and the calculated mark."""
    started = time.perf_counter()
    frame.calculate(stream.get_stream_data(frame.start_time, frame.end_time))
    analysed = time.perf_counter()
    frame.cleanup()
    frame.analysis_time = analysed - started
    frame.cleanup_time = time.perf_counter() - analysed
    frame.calculated = True
    frame.calculated_at = timezone.now()
    frame.attempts += 1
    frame.next_attempt_at = None
    frame.last_error = ""
    frame.save(force_update=True)


def record_failure(frame: BaseTimeFrame, error: BaseException, now: datetime) -> bool:
    """Count the attempt and keep its traceback; True when it was the last attempt."""
    attempts = frame.attempts + 1
    last = attempts >= app_settings.MAX_ATTEMPTS
    delay = frames.retry_delay(
        attempts, app_settings.RETRY_BACKOFF, app_settings.RETRY_BACKOFF_MAX
    )
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
    result: DrainResult,
    interrupts: tuple[type[BaseException], ...],
) -> bool:
    """Run one claimed frame in a savepoint. Returns False if the run must stop."""
    caught: tuple[type[BaseException], ...] = (Exception, *interrupts)
    try:
        with transaction.atomic():
            run_frame(frame, stream)
    except caught as error:
        last = record_failure(frame, error, timezone.now())
        _log_failure(frame, error, last)
        result.failed += last
        result.retrying += not last
        if isinstance(error, interrupts):
            result.interrupted = True
            return False
        return True
    result.calculated += 1
    return True


def calculate_batch(
    frame_class: type[BaseTimeFrame],
    result: DrainResult,
    *,
    batch_size: int,
    interrupts: tuple[type[BaseException], ...] = (),
) -> int:
    """Claim a batch and calculate it in one transaction. Returns frames claimed."""
    stream = frame_class.get_stream()
    with transaction.atomic():
        claimed = claim_frames(frame_class, batch_size)
        for frame in claimed:
            if not calculate_frame(frame, stream, result, interrupts):
                break
    return len(claimed)


def calculate_due_frames(
    frame_class: type[BaseTimeFrame],
    *,
    deadline: float,
    batch_size: int | None = None,
    interrupts: tuple[type[BaseException], ...] = (),
) -> DrainResult:
    """Calculate due frames, a batch per transaction, until none is due or time is up.

    ``deadline`` is a ``time.monotonic()`` value. ``interrupts`` are exception
    types (such as a worker's time-limit interrupt) that are recorded as a
    failed attempt and then stop the run.
    """
    result = DrainResult()
    size = batch_size or app_settings.BATCH_SIZE
    while True:
        claimed = calculate_batch(frame_class, result, batch_size=size, interrupts=interrupts)
        if result.interrupted or claimed < size:
            return result
        if time.monotonic() >= deadline:
            result.more_due = True
            return result


def next_retry_at(frame_class: type[BaseTimeFrame]) -> datetime | None:
    """When the earliest frame waiting for a retry becomes due, if any."""
    return queries.fetch_value("next_retry_at", {}, frame_class)


def _log_failure(frame: BaseTimeFrame, error: BaseException, last: bool) -> None:
    logger.warning(
        "calculate() failed for %s%s: %r",
        frame,
        " (last attempt, marked failed)" if last else ", will retry",
        error,
        extra={"action": "calculate_failed", "frame_class": type(frame).__name__},
    )
