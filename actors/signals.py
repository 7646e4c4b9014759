"""Receivers of the domain's signals: a tick as soon as one is requested (start,
backfill, recompute), a task's queued messages deleted by ``clear_queue()``, and
the cleanup actor sent for the original's ``cleanup.delay()``."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from stream_analysis import signals

from . import queue, tasks


@receiver(signals.tick_requested)
def tick_started_task(sender: Any, task: Any, **kwargs: Any) -> None:
    """Tick a task once the transaction commits (started, backfilled, recomputed), not
    at the next minute."""
    transaction.on_commit(lambda: tasks.coordinate.send(task.key))


@receiver(signals.queue_cleared)
def delete_queued_messages(sender: Any, task: Any, **kwargs: Any) -> int:
    """Delete the task's queued calculate and coordinator messages."""
    names = [tasks.calculate.actor_name, tasks.coordinate.actor_name]
    return queue.delete_queued(tasks.QUEUE, names, task.key)


@receiver(signals.cleanup_requested)
def queue_cleanup(sender: Any, **kwargs: Any) -> None:
    """Queue one run of the stream cleanup (``stream_analysis.cleanup.delay()``)."""
    transaction.on_commit(tasks.cleanup_streams.send)
