"""Frame creation: the coordinator's work for one task, one tick at a time.

A tick is idempotent. It runs under a transaction-scoped advisory lock keyed by
the task, so concurrent ticks (two schedulers, a re-arm racing the periodic
tick) serialize or skip; and the frames' UNIQUE start_time makes a duplicate
insert a no-op even without the lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, models, transaction
from django.utils import timezone

from . import frames, queries
from .models import AnalysisTask, BaseTimeFrame
from .streams import AbstractStream

logger = logging.getLogger(__name__)

#: Sub-minute frames are not served well by a once-a-minute tick: re-arm sooner.
PERIODIC_TICK = timedelta(minutes=1)
MIN_REARM = timedelta(seconds=1)


@dataclass(frozen=True)
class TickResult:
    """What one coordinator tick did for a task."""

    key: str
    locked: bool = True
    running: bool = True
    created: int = 0
    due: int = 0
    #: Seconds until the next frame should close, if the tick wants a re-arm.
    rearm_in: float | None = None


def stream_bounds(stream: AbstractStream) -> tuple[datetime, datetime] | None:
    """(earliest, latest) stream time, or None when the stream is empty."""
    if stream.is_stream_empty():
        return None
    earliest = stream.get_earliest_stream_time()
    latest = stream.get_latest_stream_time()
    if earliest is None or latest is None:
        return None
    return earliest, latest


def insert_frames(frame_class: type[BaseTimeFrame], planned: frames.FrameRange) -> int:
    """Insert every frame of ``planned`` in one statement; existing ones are kept."""
    sql, defaults = queries.insert_frames_query(frame_class)
    params = {"first": planned.first, "last": planned.last, "step": planned.duration, **defaults}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def newest_frame_start(frame_class: type[BaseTimeFrame]) -> datetime | None:
    return frame_class._default_manager.aggregate(v=models.Max("start_time"))["v"]


def count_due(frame_class: type[BaseTimeFrame], limit: int) -> int:
    """Frames due now, counted up to ``limit``."""
    return int(queries.fetch_value("count_due", {"limit": limit}, frame_class))


def rearm_delay(next_close: datetime, latest: datetime, duration: timedelta) -> timedelta | None:
    """How long until the next frame closes, if sooner than the periodic tick.

    Assumes the stream's time runs like the wall clock (a live stream); a stream
    replayed faster is caught up at each tick anyway.
    """
    delay = min(max(next_close - latest, MIN_REARM), duration)
    return delay if delay < PERIODIC_TICK else None


def try_lock(key: str) -> bool:
    """Take the task's coordinator lock for the current transaction, if free."""
    return bool(queries.fetch_value("try_task_lock", {"key": frames.lock_key("tick", key)}))


def create_due_frames(task: AnalysisTask, *, count_limit: int) -> TickResult:
    """Create every frame that is due for ``task``; count the frames due now.

    Call it inside ``transaction.atomic()``: the lock and the inserts commit
    together. Returns ``locked=False`` when another coordinator holds the task.
    """
    if not try_lock(task.key):
        return TickResult(task.key, locked=False)
    task.refresh_from_db(fields=["running"])
    if not task.is_running:
        return TickResult(task.key, running=False)
    frame_class = task.get_frame_class()
    created, rearm_in = _create(frame_class)
    AnalysisTask.objects.filter(pk=task.pk).update(last_tick_at=timezone.now())
    due = count_due(frame_class, count_limit)
    return TickResult(task.key, created=created, due=due, rearm_in=rearm_in)


def _create(frame_class: type[BaseTimeFrame]) -> tuple[int, float | None]:
    bounds = stream_bounds(frame_class.get_stream())
    if bounds is None:
        return 0, None
    earliest, latest = bounds
    duration = frame_class.DURATION
    newest = newest_frame_start(frame_class)
    planned = frames.due_frames(
        duration=duration, earliest=earliest, latest=latest, newest_existing_start=newest
    )
    created = insert_frames(frame_class, planned) if planned else 0
    if created:
        logger.info(
            "created %d frames %s..%s",
            created,
            planned.first if planned else None,
            planned.last if planned else None,
            extra={"action": "create_frames", "frame_class": frame_class.__name__},
        )
    delay = rearm_delay(frames.next_close(latest, duration), latest, duration)
    return created, None if delay is None else delay.total_seconds()


def claim_rearm(task: AnalysisTask, delay_seconds: float) -> bool:
    """Record a re-arm tick ``delay_seconds`` from now unless one is already pending.

    Returns True when the caller should send the delayed tick. A lost message
    (crash after commit) only delays the task until the next periodic tick,
    which finds ``rearm_at`` in the past and re-arms again.
    """
    now = timezone.now()
    due = now + timedelta(seconds=delay_seconds)
    updated = (
        AnalysisTask.objects.filter(pk=task.pk).exclude(rearm_at__gt=now).update(rearm_at=due)
    )
    return updated == 1


def complete_from(planned: frames.FrameRange, earliest: datetime) -> datetime:
    """The first frame whose data is all still stored: cleanup may have cut into the first."""
    return planned.first if planned.first >= earliest else planned.first + planned.duration


def backfill(task: AnalysisTask, *, force: bool = False) -> tuple[int, int]:
    """Create every missing frame over the whole stream; ``force`` re-queues done ones.

    Returns (frames created, frames reset to pending).
    """
    frame_class = task.get_frame_class()
    bounds = stream_bounds(frame_class.get_stream())
    if bounds is None:
        return 0, 0
    planned = frames.backfill_frames(
        duration=frame_class.DURATION, earliest=bounds[0], latest=bounds[1]
    )
    if planned is None:
        return 0, 0
    with transaction.atomic():
        created = insert_frames(frame_class, planned)
        reset = 0
        if force:
            reset = queries.execute(
                "reset_frames",
                {"first": complete_from(planned, bounds[0]), "last": planned.last},
                frame_class,
            )
    return created, reset
