"""Scale-out: several worker instances (as if on several hosts) against one PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count

from actors import tasks
from actors.sizing import connection_budget
from tests.conftest import wait_until
from tests.streams import write_stream
from tests.testapp.models import CalculationLog, CountFrame

pytestmark = pytest.mark.workers

INSTANCES, PROCESSES, THREADS = 3, 2, 2


def database_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return int(cursor.fetchone()[0])


def max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def test_three_worker_instances_share_the_work_within_their_connection_budget(workers):
    # Given three worker instances of 2 processes x 2 threads, as if on three hosts
    expected = write_stream(240)
    env = {"TEST_CALCULATE_SLEEP": "0.01"}
    for _ in range(INSTANCES):
        workers.start(processes=PROCESSES, threads=THREADS, **env)

    # When the coordinator ticks and the frames drain, watching the connections
    tasks.coordinate.send("counts")
    for _ in range(INSTANCES * PROCESSES * THREADS):
        tasks.calculate.send("counts")
    peak = 0

    def drained() -> bool:
        nonlocal peak
        peak = max(peak, database_connections())
        return CountFrame.objects.filter(calculated=True).count() == 240

    wait_until(drained, 120, "240 calculated frames")

    # Then every frame was calculated once, by processes of every instance
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    per_frame = dict(runs.values_list("start_time").annotate(n=Count("id")))
    assert per_frame == dict.fromkeys(expected, 1)
    assert len(set(runs.values_list("pid", flat=True))) >= INSTANCES
    # And the connections stayed within the budget, far below max_connections
    budget = INSTANCES * connection_budget(PROCESSES, THREADS)
    print(f"peak connections {peak}, budget {budget}, max_connections {max_connections()}")
    assert 0 < peak <= budget <= max_connections()
