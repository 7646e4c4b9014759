"""The periodic cleanup actor on a real worker: it logs its count, and Dramatiq no
warning about a returned value (tests/db/test_periodic_cleanup.py: what it deletes)."""

from __future__ import annotations

import re

import pytest

from actors import tasks
from tests.conftest import wait_until

pytestmark = pytest.mark.usefixtures("three_tasks")


@pytest.mark.workers
def test_a_worker_runs_the_cleanup_without_dramatiqs_returned_a_value_warning(workers):
    # Given a worker: no result backend, so a value an actor returns is discarded with a
    # warning (the worker's settings are tests/settings.py's: the count may be 0)
    workers.start(processes=1, threads=1)

    # When it runs the cleanup, and stops (finishing the message: its log is complete)
    tasks.cleanup_streams.send()
    wait_until(lambda: COUNT.search(workers.logs()), 60, "the cleanup's count logged")
    workers.stop()

    # Then it logged the count, and Dramatiq logged no "returned a value" warning
    log = workers.logs()
    assert COUNT.search(log), log
    assert "returned a value" not in log


COUNT = re.compile(r"\[actors.tasks\] \[INFO\] cleanup deleted \d+ items")
