"""Read and trim the broker's queue for one task's messages (SQL in ``sql/queue.sql``).

Only dramatiq-postgres (this app's :class:`~actors.broker.DjangoPostgresBroker`)
keeps its messages in a table that SQL can count and trim per task. On another
broker (RabbitMQ, Redis) the count is unknown (None): the top-up then sends its
messages anyway, which is harmless (a calculate message that finds no frame due
stops at once: claims are SKIP LOCKED); and a task's queued messages cannot be
deleted one task at a time: they stay, and end at once when they find the task
stopped or its frames gone.
"""

from __future__ import annotations

import dramatiq
from django.db import connection
from dramatiq.common import dq_name

from stream_analysis.queries import named_queries

from .broker import DjangoPostgresBroker


def _queue_table() -> str | None:
    """The broker's queue table, quoted; None when the broker is not this app's."""
    broker = dramatiq.get_broker()
    if not isinstance(broker, DjangoPostgresBroker):
        return None
    quote = connection.ops.quote_name
    return f"{quote(broker.schema)}.{quote(broker.prefix + 'queue')}"


def _sql(name: str, table: str) -> str:
    return named_queries(__package__, "sql/queue.sql")[name].format(table=table)


def _queues(queue_name: str) -> list[str]:
    return [queue_name, dq_name(queue_name)]


def count_queued(queue_name: str, actor_name: str, key: str) -> int | None:
    """Messages of ``actor_name`` for task ``key`` waiting in the queue (not in flight);
    None when the broker cannot tell (not dramatiq-postgres)."""
    table = _queue_table()
    if table is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_sql("count_queued", table), [_queues(queue_name), actor_name, key])
        return int(cursor.fetchone()[0])


def delete_queued(queue_name: str, actor_names: list[str], key: str) -> int | None:
    """Delete the queued messages of ``actor_names`` for task ``key``; return how many;
    None when the broker cannot (not dramatiq-postgres): the messages stay."""
    table = _queue_table()
    if table is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_sql("delete_queued", table), [_queues(queue_name), actor_names, key])
        return cursor.rowcount
