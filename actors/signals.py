"""Receivers of the domain's signals: a tick as soon as one is requested (start,
backfill, recompute), a task's queued messages deleted by ``clear_queue()``, and
the cleanup actor sent for the original's ``cleanup.delay()``."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from django.db import transaction
from django.dispatch import receiver

from stream_analysis import signals

from . import queue, tasks

logger = logging.getLogger(__name__)


@receiver(signals.tick_requested)
def tick_started_task(sender: Any, task: Any, **kwargs: Any) -> None:
    """Tick a task once the transaction commits (started, backfilled, recomputed), not
    at the next minute."""
    transaction.on_commit(lambda: tasks.coordinate.send(task.key))


@receiver(signals.queue_cleared)
def delete_queued_messages(sender: Any, task: Any, **kwargs: Any) -> int:
    """Delete the task's queued calculate and coordinator messages (dramatiq-postgres only:
    on another broker they stay, and end at once when they run: said in the log)."""
    names = [tasks.calculate.actor_name, tasks.coordinate.actor_name]
    deleted = queue.delete_queued(tasks.QUEUE, names, task.key)
    if deleted is None:
        logger.warning(
            "%s cannot delete one task's messages: those queued for %r stay, and end at "
            "once when they find its frames gone or the task stopped",
            type(dramatiq.get_broker()).__name__,
            task.key,
            extra={"action": "clear_queue", "task": task.key},
        )
        return 0
    return deleted


@receiver(signals.cleanup_requested)
def queue_cleanup(sender: Any, **kwargs: Any) -> None:
    """Queue one run of the stream cleanup (``stream_analysis.cleanup.delay()``)."""
    transaction.on_commit(tasks.cleanup_streams.send)
