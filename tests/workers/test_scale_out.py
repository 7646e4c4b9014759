"""Scale-out: several worker instances (as if on several hosts) against one PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.models import Count

from actors import tasks
from actors.sizing import connection_budget
from tests.conftest import RUN_PGBOUNCER, RUN_POOL, wait_until
from tests.streams import write_stream
from tests.testapp.models import CalculationLog, CountFrame, gate_arrivals, gate_env

pytestmark = pytest.mark.workers

#: One thread per process: a frame held at the test's gate holds its batch's transaction,
#: so a PgBouncer server connection under TEST_PGBOUNCER=1 (a pool of 8): the four
#: processes of two instances must leave room for the third's.
INSTANCES, PROCESSES, THREADS = 3, 2, 1
#: Each process holds at most 2 x threads messages (Dramatiq's prefetch) while its
#: frames wait at the gate, so two instances hold at most 8: the rest reach the third.
MESSAGES = INSTANCES * PROCESSES * 2 * THREADS


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


def server_budget() -> int:
    """The most server connections the three instances can hold: their budgets; behind
    the run's PgBouncer (TEST_PGBOUNCER=1), their Django connections share its pool
    instead, and only the broker's stay direct (docs/deployment.md, Sizing connections)."""
    budget = INSTANCES * connection_budget(PROCESSES, THREADS)
    if RUN_PGBOUNCER:
        return budget - INSTANCES * PROCESSES * THREADS + RUN_POOL
    return budget


def test_three_worker_instances_share_the_work_within_their_connection_budget(workers, tmp_path):
    # Given three worker instances of 2 processes, as if on three hosts, whose frames wait
    # at a gate until processes of all three have started one (tests/testapp/models.py)
    expected = write_stream(240)
    gate = tmp_path / "gate"
    env = {"TEST_CALCULATE_SLEEP": "0.01", **gate_env(gate, INSTANCES)}
    instances = [
        workers.start(processes=PROCESSES, threads=THREADS, **env) for _ in range(INSTANCES)
    ]

    # When the coordinator has created the frames and calculate messages wake the workers,
    # watching the connections
    tasks.coordinate.send("counts")
    wait_until(lambda: CountFrame.objects.count() == 240, 60, "240 frames")
    for _ in range(MESSAGES):
        tasks.calculate.send("counts")
    peak = 0

    def drained() -> bool:
        nonlocal peak
        peak = max(peak, database_connections())
        return CountFrame.objects.filter(calculated=True).count() == 240

    wait_until(drained, 120, "240 calculated frames")

    # Then every frame was calculated once, and each instance committed some of them
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    per_frame = dict(runs.values_list("start_time").annotate(n=Count("id")))
    assert per_frame == dict.fromkeys(expected, 1)
    instance_of = gate_arrivals(gate)
    committed = {instance_of[pid] for pid in runs.values_list("pid", flat=True)}
    assert committed == {proc.pid for proc in instances}
    # And the connections stayed within the budget, far below max_connections
    budget = server_budget()
    print(f"peak connections {peak}, budget {budget}, max_connections {max_connections()}")
    assert 0 < peak <= budget <= max_connections()
