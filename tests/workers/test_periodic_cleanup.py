"""The periodic cleanup actor on a real worker: it logs its count, and Dramatiq no
warning about a returned value (tests/db/test_periodic_cleanup.py: what it deletes)."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from actors import tasks
from tests.conftest import wait_until

pytestmark = pytest.mark.usefixtures("three_tasks")


@pytest.mark.workers
def test_a_worker_runs_the_cleanup_without_dramatiqs_returned_a_value_warning(workers):
    # Given a worker: no result backend, so a value an actor returns is discarded with a
    # warning (the worker's settings are tests/settings.py's: the count may be 0)
    workers.start(processes=1, threads=1)

    # When it runs the cleanup, to its acknowledgement
    message = tasks.cleanup_streams.send()
    wait_until(lambda: not message_in_queue(message.message_id), 60, "the cleanup acknowledged")
    workers.stop()  # the worker's log is complete once it has exited

    # Then it logged the count, and Dramatiq warned about no returned value
    log = workers.logs()
    assert re.search(r"\[actors.tasks\] \[INFO\] cleanup deleted \d+ items", log), log
    assert "returned a value" not in log


def message_in_queue(message_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM dramatiq.queue WHERE message_id = %s", [message_id])
        return cursor.fetchone() is not None
