"""User text never reaches SQL but as a bound parameter or a hashed lock key."""

from __future__ import annotations

import pytest
from django.db import connection

from actors import queue, tasks
from stream_analysis import UnknownTaskError, grid
from stream_analysis.models import AnalysisTask

HOSTILE = "counts'; DROP TABLE dramatiq.queue; --"

pytestmark = pytest.mark.django_db


def queue_table_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('dramatiq.queue') IS NOT NULL")
        return bool(cursor.fetchone()[0])


def test_a_hostile_task_key_is_only_ever_an_unknown_key():
    with pytest.raises(UnknownTaskError):
        AnalysisTask.require(HOSTILE)
    assert AnalysisTask.get(HOSTILE) is None
    tasks.coordinate.fn(HOSTILE)  # a message with it is dropped with a warning
    tasks.calculate.fn(HOSTILE)
    assert queue_table_exists()


def test_queue_queries_bind_the_key_as_a_parameter():
    assert queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, HOSTILE) == 0
    assert queue.delete_queued(tasks.QUEUE, [tasks.calculate.actor_name], HOSTILE) == 0
    assert queue_table_exists()


def test_advisory_lock_keys_are_hashes_of_the_key_never_the_text():
    key = grid.lock_key("tick", HOSTILE)
    assert isinstance(key, int) and -(2**63) <= key < 2**63
