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

from . import grid, queries, stream_clock, trail
from .exceptions import FrameGridChanged
from .models import AnalysisTask, BaseTimeFrame
from .settings import app_settings
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
    #: Calculated frames put back to pending because late items arrived.
    recomputed: int = 0
    #: More frames are due than ``MAX_FRAMES_PER_TICK`` let this tick create: tick again.
    capped: bool = False


def stream_latest(stream: AbstractStream) -> datetime | None:
    """The stream's latest time, or None when the stream is empty."""
    return None if stream.is_stream_empty() else stream.get_latest_stream_time()


def stream_bounds(stream: AbstractStream) -> tuple[datetime, datetime] | None:
    """(earliest, latest) stream time, or None when the stream is empty."""
    if stream.is_stream_empty():
        return None
    earliest = stream.get_earliest_stream_time()
    latest = stream.get_latest_stream_time()
    if earliest is None or latest is None:
        return None
    return earliest, latest


def insert_frames(frame_class: type[BaseTimeFrame], planned: grid.FrameRange) -> int:
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


def rearm_delay(until_close: timedelta, duration: timedelta) -> timedelta | None:
    """How long to wait for the next frame to close, if sooner than the periodic tick.

    ``until_close`` is the stream time from the watermark to the next close.
    Assumes the stream's time runs like the wall clock (a live stream); a stream
    replayed faster is caught up at each tick anyway.
    """
    delay = min(max(until_close, MIN_REARM), duration)
    return delay if delay < PERIODIC_TICK else None


def try_lock(key: str) -> bool:
    """Take the task's coordinator lock for the current transaction, if free."""
    return bool(queries.fetch_value("try_task_lock", {"key": grid.lock_key("tick", key)}))


def tick(task: AnalysisTask, *, count_limit: int | None = None) -> TickResult:
    """One coordinator tick of ``task``, in a transaction of its own; returns what it did.

    The lock, the frames created and the task's state commit together; once it
    returns, workers can see the frames. ``count_limit`` bounds the count of due
    frames (default: what ``CONCURRENCY`` messages of ``BATCH_SIZE`` frames take).
    Raises ConfigurationError (naming the fix) for a setup mistake, such as a frame
    model whose table was never migrated.
    """
    if count_limit is None:
        count_limit = app_settings.CONCURRENCY * app_settings.BATCH_SIZE
    with queries.table_required(task.get_frame_class()), transaction.atomic():
        return create_due_frames(task, count_limit=count_limit)


def create_due_frames(task: AnalysisTask, *, count_limit: int) -> TickResult:
    """Create every frame that is due for ``task``; count the frames due now.

    With ``RECOMPUTE_LATE``, also put back to pending the calculated frames that
    had items arrive since the last tick. Call it inside ``transaction.atomic()``:
    the lock and the writes commit together. Returns ``locked=False`` when another
    coordinator holds the task.
    """
    if not try_lock(task.key):
        return TickResult(task.key, locked=False)
    task.refresh_from_db()
    if not task.is_running:
        return TickResult(task.key, running=False)
    frame_class = task.get_frame_class()
    now = timezone.now()
    newest = newest_frame_start(frame_class)
    check_grid(task, frame_class, newest)
    watermark, created, capped = follow_stream(task, frame_class, newest, now)
    rearm_in = rearm_seconds(frame_class, watermark)
    recomputed = mark_late_frames(task, frame_class, now) if frame_class.RECOMPUTE_LATE else 0
    task.last_tick_at = now
    task.save(update_fields=[*TICK_STATE])
    due = count_due(frame_class, count_limit)
    return TickResult(
        task.key,
        created=created,
        due=due,
        rearm_in=rearm_in,
        recomputed=recomputed,
        capped=capped,
    )


def follow_stream(
    task: AnalysisTask, frame_class: type[BaseTimeFrame], newest: datetime | None, now: datetime
) -> tuple[datetime | None, int, bool]:
    """Read the stream's bounds, note its watermark, create the frames it closes.

    Returns (the watermark, None for an empty or untrusted stream; frames created;
    whether ``MAX_FRAMES_PER_TICK`` left some for the next tick).
    """
    stream = frame_class.get_stream()
    bounds = stream_bounds(stream)
    if bounds is None:
        return None, 0, False
    trusted = stream_clock.trusted_bounds(stream, bounds, now)
    if trusted != bounds and task.stream_latest != bounds[1]:
        stream_clock.report_future_item(task.key, bounds[1], now)
    watermark = observe_watermark(
        task,
        bounds[1],
        frame_class.IDLE_TIMEOUT,
        now,
        trusted=None if trusted is None else trusted[1],
    )
    if trusted is None or watermark is None:
        return watermark, 0, False
    created, capped = create_closed_frames(frame_class, trusted[0], watermark, newest)
    return watermark, created, capped


#: The task's fields a tick writes; start/stop and re-arms write others.
TICK_STATE = (
    "last_tick_at",
    "stream_latest",
    "stream_latest_seen_at",
    "late_checked_at",
    "frame_grid",
)


def check_grid(
    task: AnalysisTask, frame_class: type[BaseTimeFrame], newest: datetime | None
) -> None:
    """Refuse to go on if DURATION or OFFSET changed while frames of the old grid exist.

    New frames would not line up with the old ones: frames would overlap, or a
    gap would go unanalysed. Nothing is created until the frame model is put
    back or its frames are deleted; no stream data is deleted meanwhile beyond
    what the existing frames allow.
    """
    label = grid.grid_label(frame_class.DURATION, frame_class.OFFSET)
    on_grid = (
        newest is None
        or grid.frame_start(newest, frame_class.DURATION, frame_class.OFFSET) == newest
    )
    if newest is None or (task.frame_grid in ("", label) and on_grid):
        task.frame_grid = label
        return
    was = task.frame_grid or "another DURATION or OFFSET"
    raise FrameGridChanged(
        f"{frame_class.__name__}'s frames were made with {was}, but it now has "
        f"DURATION + OFFSET = {label}: new frames would not line up with the old ones. "
        f"Restore DURATION and OFFSET, or delete its frames (they are results of the old "
        f"grid; for example in the admin) so that it starts again on the new grid."
    )


def observe_watermark(
    task: AnalysisTask,
    latest: datetime,
    idle_timeout: timedelta | None,
    now: datetime,
    *,
    trusted: datetime | None,
) -> datetime | None:
    """Note when the stream's latest time last moved; return the time to close frames to.

    ``trusted`` is the latest time within ``FUTURE_TOLERANCE`` (``latest`` itself
    unless an item lies beyond it); None: no item is trusted, nothing closes.
    """
    if task.stream_latest != latest:
        task.stream_latest, task.stream_latest_seen_at = latest, now
    if trusted is None:
        return None
    return grid.idle_watermark(trusted, task.stream_latest_seen_at, now, idle_timeout)


def create_closed_frames(
    frame_class: type[BaseTimeFrame],
    earliest: datetime,
    watermark: datetime,
    newest: datetime | None,
) -> tuple[int, bool]:
    """Insert the frames closed by ``watermark`` after ``newest`` (the newest frame's start),
    at most ``MAX_FRAMES_PER_TICK`` of them, oldest first.

    Returns (frames created, whether more are due than the cap let it create).
    """
    planned = grid.frames_to_create(
        duration=frame_class.DURATION,
        earliest=earliest,
        latest=watermark,
        newest_existing_start=newest,
        offset=frame_class.OFFSET,
        lateness=frame_class.LATENESS,
    )
    if planned is None:
        return 0, False
    capped = planned.count > app_settings.MAX_FRAMES_PER_TICK
    if capped:
        planned = next(planned.chunks(app_settings.MAX_FRAMES_PER_TICK))
    created = insert_frames(frame_class, planned)
    if created:
        logger.info(
            "created %d frames %s..%s",
            created,
            planned.first,
            planned.last,
            extra={"action": "create_frames", "frame_class": frame_class.__name__},
        )
    return created, capped


def rearm_seconds(frame_class: type[BaseTimeFrame], watermark: datetime | None) -> float | None:
    """Seconds until the next re-arm tick (None: the periodic tick comes sooner).

    An empty stream (no watermark) is looked at again after one ``DURATION``, as
    an idle one is, so that a new stream's first frames need not wait for the
    periodic tick.
    """
    duration = frame_class.DURATION
    if watermark is None:
        until_close = duration
    else:
        closes_at = grid.next_close(watermark, duration, frame_class.OFFSET, frame_class.LATENESS)
        until_close = closes_at - watermark
    delay = rearm_delay(until_close, duration)
    return None if delay is None else delay.total_seconds()


def mark_late_frames(task: AnalysisTask, frame_class: type[BaseTimeFrame], now: datetime) -> int:
    """Put back to pending the calculated frames whose items arrived since the last tick.

    Reads the stream's arrivals in (last check, now - ARRIVAL_SETTLE]: one query
    whose cost follows the items that arrived, not the number of frames; then one
    UPDATE by start time. Each frame is marked at most once per tick. Frames
    before the frame class's memory cutoff may have lost data and are left alone.
    """
    until = now - timedelta(seconds=app_settings.ARRIVAL_SETTLE)
    since = task.late_checked_at
    task.late_checked_at = until if since is None else max(since, until)
    newest = newest_frame_start(frame_class)
    if since is None or until <= since or newest is None:
        return 0
    arrivals = frame_class.get_stream().get_late_arrivals(
        since, until, newest + frame_class.DURATION
    )
    marked, _ = trail.mark_late(
        frame_class,
        arrivals,
        settle=timedelta(seconds=app_settings.ARRIVAL_SETTLE),
        keep_from=frame_class.get_stream_memory_cutoff(),
    )
    if marked:
        logger.info(
            "%d calculated frames had late items: recomputing them",
            marked,
            extra={"action": "recompute_late", "task": task.key},
        )
    return marked


def claim_rearm(task: AnalysisTask, delay_seconds: float, claimant: str = "") -> bool:
    """Record a re-arm tick ``delay_seconds`` from now unless one is already pending.

    Returns True when the caller should send the delayed tick. ``claimant`` is the
    message id of the tick that claims: the same message may claim again while its
    re-arm is pending. That message comes back only if its worker died, or it failed,
    after it claimed and perhaps before it sent; a second re-arm tick is harmless (ticks
    are idempotent), a lost one would leave the task until the next periodic tick.
    Without a claimant (a tick run outside a worker) a pending re-arm is never claimed
    again: a lost message then waits for the next periodic tick, which finds
    ``rearm_at`` in the past and re-arms again.
    """
    now = timezone.now()
    due = now + timedelta(seconds=delay_seconds)
    claimable = models.Q(rearm_at__isnull=True) | models.Q(rearm_at__lte=now)
    if claimant:
        claimable |= models.Q(rearm_by=claimant)
    updated = AnalysisTask.objects.filter(claimable, pk=task.pk).update(
        rearm_at=due, rearm_by=claimant
    )
    return updated == 1
