"""The four actors: the periodic tick, the per-task coordinator, the calculator and
the periodic stream cleanup.

Every actor here is safe to run twice, concurrently or not: the coordinator
works under a per-task advisory lock and inserts with ON CONFLICT DO NOTHING;
the calculator claims frames with FOR UPDATE SKIP LOCKED, so a duplicate finds
nothing to claim and stops; the cleanup skips while another one holds its lock.
Messages carry task keys, never rows. No actor returns a value: there is no
result backend.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dramatiq
from django.utils import timezone
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded
from periodiq import cron

from stream_analysis import calculation, coordinator, retention
from stream_analysis.exceptions import StreamAnalysisError
from stream_analysis.models import AnalysisTask
from stream_analysis.settings import DEFAULTS, app_settings

from . import queue, shutdown
from .checks import cron_problem, valid_queue_name

logger = logging.getLogger(__name__)


def queue_name() -> str:
    """``STREAM_ANALYSIS_QUEUE``, or the default while it is not a valid name.

    Read once, when the actors are declared. A bad name must not crash every
    command at import: ``manage.py check`` reports it (E022), and so does this log.
    """
    name = app_settings.QUEUE
    if valid_queue_name(name):
        return str(name)
    logger.error(
        "STREAM_ANALYSIS_QUEUE is %r, not a valid queue name: using %r (manage.py check "
        "says how to fix it)",
        name,
        DEFAULTS["QUEUE"],
    )
    return str(DEFAULTS["QUEUE"])


QUEUE: str = queue_name()
#: Dramatiq's own retries cover infrastructure errors (database gone, reset
#: connection); calculate() failures are retried per frame by the domain.
INFRA_RETRIES: dict[str, Any] = {"max_retries": 20, "min_backoff": 1_000, "max_backoff": 30_000}
#: The longest message id a re-arm claim records (``AnalysisTask.rearm_by``); Dramatiq's
#: are UUIDs (36 characters).
MESSAGE_ID_LENGTH = AnalysisTask._meta.get_field("rearm_by").max_length or 0


@contextmanager
def mistakes_reported(key: str) -> Iterator[None]:
    """Log a configuration or stream-interface mistake once, with its fix, instead of
    letting Dramatiq retry it twenty times: it fails the same way until someone
    fixes it, and the next tick (a minute later at most) tries again anyway.
    Frames are left as they are: nothing is lost. The domain raises these as
    StreamAnalysisError (a missing table included); database errors propagate,
    and Dramatiq retries them with backoff.
    """
    try:
        yield
    except StreamAnalysisError as error:
        _log_mistake(key, error)


def _log_mistake(key: str, error: BaseException) -> None:
    logger.error("task %r cannot run: %s", key, error, extra={"action": "mistake", "task": key})


def _calculate_time_limit_ms() -> int:
    return int((app_settings.TIME_BUDGET + app_settings.FRAME_TIME_LIMIT) * 1000)


@dramatiq.actor(queue_name=QUEUE, periodic=cron("* * * * *"), max_retries=0)
def tick() -> None:
    """Every minute (periodiq): send a coordinator tick for every running task.

    Safe to run twice: a duplicate tick only sends duplicate coordinator ticks,
    which serialize on the task's lock and create nothing new.
    """
    for task in AnalysisTask.get():
        if task.is_running:
            coordinate.send(task.key)


@dramatiq.actor(queue_name=QUEUE, **INFRA_RETRIES)
def coordinate(key: str) -> None:
    """Create every due frame of task ``key``, then make sure workers drain them.

    Safe to run twice: ticks serialize on a per-task advisory lock, and frames
    are unique by start time. A tick that finds the lock taken leaves the work to
    the holder, and a re-arm behind (:func:`rearm_after_holder`) in case the holder
    dies before it commits.
    """
    task = AnalysisTask.get(key)
    if task is None:
        logger.warning(
            "tick for unknown task %r ignored", key, extra={"action": "tick", "task": key}
        )
        return
    result = None
    with mistakes_reported(key):
        result = coordinator.tick(task)
    if result is None or not result.running:
        return
    if not result.locked:
        rearm_after_holder(task)
        return
    # The tick has committed: the workers these messages wake can see its frames.
    top_up(key, result.due)
    if result.capped:
        coordinate.send(key)  # the frames past MAX_FRAMES_PER_TICK, at once
    elif result.rearm_in is not None and coordinator.claim_rearm(
        task, result.rearm_in, current_message_id()
    ):
        send_rearm(key, result.rearm_in)


def top_up(key: str, due: int) -> int:
    """Send calculate messages until enough are queued for ``due`` frames.

    Counts only queued messages: in-flight ones may belong to a dead worker
    whose messages wait for the broker's redelivery. A broker that cannot count
    them (RabbitMQ, Redis) gets all it wants: extra messages find nothing to claim
    and stop. Returns how many it sent.
    """
    wanted = min(app_settings.CONCURRENCY, math.ceil(due / app_settings.BATCH_SIZE))
    missing = wanted - (queue.count_queued(QUEUE, calculate.actor_name, key) or 0)
    for _ in range(missing):
        calculate.send(key)
    return max(missing, 0)


def rearm_after_holder(task: AnalysisTask) -> None:
    """Re-arm ``task`` a second from now (unless a re-arm is pending): another tick holds
    its lock, and may die before it commits. RabbitMQ hands a killed worker's message
    back at once, while the dead tick's server process still holds the lock until its
    statement ends; without this, that redelivered tick would do nothing and the task
    would wait for the scheduler's next minute. A holder that commits finds this re-arm
    pending and sends none of its own: the re-arm's tick plans the next one."""
    delay = coordinator.MIN_REARM.total_seconds()
    if coordinator.claim_rearm(task, delay, current_message_id()):
        send_rearm(task.key, delay)


def current_message_id() -> str:
    """The id of the message this actor runs for (Dramatiq's ``CurrentMessage``
    middleware); "" outside a worker, or without that middleware. A redelivered or
    retried message keeps its id: it may claim its own pending re-arm again, in case
    it died, or failed, before it sent it."""
    message = CurrentMessage.get_current_message()
    if message is None or len(message.message_id) > MESSAGE_ID_LENGTH:
        return ""
    return str(message.message_id)


def send_rearm(key: str, delay_seconds: float) -> None:
    coordinate.send_with_options(args=(key,), delay=int(delay_seconds * 1000))


@dramatiq.actor(queue_name=QUEUE, time_limit=_calculate_time_limit_ms(), **INFRA_RETRIES)
def calculate(key: str) -> None:
    """Calculate due frames of task ``key`` until none is due or the time budget is up.

    Safe to run twice, and many at once: frames are claimed with SKIP LOCKED, so
    each is calculated by exactly one message. When time runs out with frames
    still due it hands over to a fresh message, so periodic ticks never starve.
    """
    task = AnalysisTask.get(key)
    if task is None or not task.is_running:
        return
    result = frame_class = None
    with mistakes_reported(key):
        frame_class = task.get_frame_class()
        result = calculation.calculate_due_frames(
            frame_class,
            deadline=time.monotonic() + app_settings.TIME_BUDGET,
            interrupts=(TimeLimitExceeded,),
            stop_requested=shutdown.requested,
        )
    if result is None or frame_class is None:
        return
    if result.more_due or result.interrupted:
        calculate.send(key)
        return
    retry_at = calculation.next_retry_at(frame_class)
    if retry_at is not None:
        delay = max((retry_at - timezone.now()).total_seconds(), 0.0)
        calculate.send_with_options(args=(key,), delay=int(delay * 1000) + 100)


def periodic_options(setting: str) -> dict[str, Any]:
    """Actor options that make periodiq send it on ``STREAM_ANALYSIS_<setting>``.

    A cron string gives ``{"periodic": cron(...)}``; None gives no option (the
    actor exists but is never scheduled). Read once, when the actors are declared.
    A schedule that is not valid gives no option either, with an error logged:
    it must not crash every command at import; ``manage.py check`` reports it (E018).
    """
    schedule = getattr(app_settings, setting)
    if schedule is None:
        return {}
    problem = cron_problem(schedule) if isinstance(schedule, str) else "it is not a string"
    if problem is None and len(schedule.split()) not in (1, 5):
        problem = "it does not have five fields"
    if problem is not None:
        logger.error(
            "STREAM_ANALYSIS_%s is %r: %s. Not scheduled (manage.py check says how to fix it).",
            setting,
            schedule,
            problem,
        )
        return {}
    return {"periodic": cron(schedule)}


@dramatiq.actor(queue_name=QUEUE, max_retries=0, **periodic_options("CLEANUP_SCHEDULE"))
def cleanup_streams() -> None:
    """Delete the stream data every task is done with (``STREAM_ANALYSIS_CLEANUP_SCHEDULE``).

    Safe to run twice: it runs under a transaction-scoped advisory lock, so a second run
    while one is going (two schedulers, a slow run) skips at once; and one run
    after another only deletes what is still before the cutoffs. No retries: the
    next scheduled run does the same work. Logs the items deleted; returns None,
    as an actor without a result backend must (Dramatiq warns at every run otherwise).
    """
    deleted = retention.cleanup_exclusively()
    if deleted is not None:
        logger.info(
            "cleanup deleted %d items", deleted, extra={"action": "cleanup", "deleted": deleted}
        )
