"""Read and trim the broker's queue table for one task's messages (SQL in ``sql/queue.sql``)."""

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


def count_queued(queue_name: str, actor_name: str, key: str) -> int:
    """Messages of ``actor_name`` for task ``key`` waiting in the queue (not in flight)."""
    table = _queue_table()
    if table is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_sql("count_queued", table), [_queues(queue_name), actor_name, key])
        return int(cursor.fetchone()[0])


def delete_queued(queue_name: str, actor_names: list[str], key: str) -> int:
    """Delete the queued messages of ``actor_names`` for task ``key``; return how many."""
    table = _queue_table()
    if table is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_sql("delete_queued", table), [_queues(queue_name), actor_names, key])
        return cursor.rowcount
