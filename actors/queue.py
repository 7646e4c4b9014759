"""Read and trim the broker's queue table for one task's messages."""

from __future__ import annotations

import dramatiq
from django.db import connection
from dramatiq.common import dq_name

from .broker import DjangoPostgresBroker

_COUNT = """
SELECT count(*) FROM {table}
WHERE queue_name = ANY(%s) AND "state" = 'queued'
  AND message->>'actor_name' = %s AND message->'args'->>0 = %s
"""

_DELETE = """
DELETE FROM {table}
WHERE queue_name = ANY(%s) AND "state" = 'queued'
  AND message->>'actor_name' = ANY(%s) AND message->'args'->>0 = %s
"""


def _queue_table() -> str | None:
    """The broker's queue table, quoted; None when the broker is not this app's."""
    broker = dramatiq.get_broker()
    if not isinstance(broker, DjangoPostgresBroker):
        return None
    quote = connection.ops.quote_name
    return f"{quote(broker.schema)}.{quote(broker.prefix + 'queue')}"


def _queues(queue_name: str) -> list[str]:
    return [queue_name, dq_name(queue_name)]


def count_queued(queue_name: str, actor_name: str, key: str) -> int:
    """Messages of ``actor_name`` for task ``key`` waiting in the queue (not in flight)."""
    table = _queue_table()
    if table is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_COUNT.format(table=table), [_queues(queue_name), actor_name, key])
        return int(cursor.fetchone()[0])


def delete_queued(queue_name: str, actor_names: list[str], key: str) -> int:
    """Delete the queued messages of ``actor_names`` for task ``key``; return how many."""
    table = _queue_table()
    if table is None:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_DELETE.format(table=table), [_queues(queue_name), actor_names, key])
        return cursor.rowcount
