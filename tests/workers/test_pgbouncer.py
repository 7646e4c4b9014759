"""Real workers behind PgBouncer in transaction pooling calculate a backlog once, within
its pool (tests/db/test_pgbouncer.py: the cleanup's lock and the admin behind it).

The first test starts a PgBouncer of its own (tests/pgbouncer.py, Debian's package) in
front of the test database's server, with 4 server connections; the last checks that
TEST_PGBOUNCER=1 puts the run's workers behind the run's PgBouncer.
"""

from __future__ import annotations

import pytest
from django.db import connection

from actors import tasks
from tests.brokers import RUN_BROKER
from tests.conftest import (
    BEHIND_PGBOUNCER_NAME,
    BEHIND_RUN_PGBOUNCER_NAME,
    RUN_PGBOUNCER,
    pgbouncer_worker_env,
    wait_until,
)
from tests.pgbouncer import PgBouncer
from tests.streams import assert_every_frame_exactly_once, calculated, write_stream

pytestmark = pytest.mark.usefixtures("three_tasks")


def server_connections(database: str) -> int:
    """Server sessions on ``database`` opened through PgBouncer by a worker."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [database, BEHIND_PGBOUNCER_NAME],
        )
        return int(cursor.fetchone()[0])


#: The broker through PgBouncer too ("pooled") is dramatiq-postgres' case only.
BROKER_ROUTES = ["direct", "pooled"] if RUN_BROKER == "postgres" else ["direct"]


@pytest.mark.workers
@pytest.mark.parametrize("broker", BROKER_ROUTES)
def test_workers_behind_pgbouncer_calculate_a_backlog_once_within_its_pool(
    pgbouncer: PgBouncer, workers, broker
):
    # Given 120 frames, and two worker processes x 4 threads behind a PgBouncer of 4
    # server connections: Django through it, and the broker direct (for its LISTEN) or
    # through it too (polling; its statements must never be prepared on the server)
    expected = write_stream(120)
    env = {**pgbouncer_worker_env(pgbouncer, broker), "TEST_CALCULATE_SLEEP": "0.01"}
    workers.start(processes=2, threads=4, **env)
    database = connection.settings_dict["NAME"]
    peak = 0

    # When the coordinator ticks
    tasks.coordinate.send("counts")

    def done() -> bool:
        nonlocal peak
        peak = max(peak, server_connections(database))
        return calculated() == 120

    # Then every frame is calculated once, with no more server connections than the pool
    wait_until(done, 90, "120 calculated frames")
    assert_every_frame_exactly_once(expected)
    assert 0 < peak <= pgbouncer.pool_size, f"{peak} server connections"
    assert "prepared statement" not in workers.logs()


@pytest.mark.workers
def test_the_runs_workers_reach_postgresql_the_way_test_pgbouncer_says(workers):
    # Given a worker started as every test starts them (through the run's PgBouncer when
    # TEST_PGBOUNCER=1, else directly)
    expected = write_stream(20)
    workers.start(processes=1, threads=2)
    seen: set[str] = set()

    # When it calculates a backlog
    tasks.coordinate.send("counts")

    def done() -> bool:
        seen.update(application_names(connection.settings_dict["NAME"]))
        return calculated() == 20

    wait_until(done, 60, "20 calculated frames")

    # Then its sessions came through the run's PgBouncer exactly when the run says so
    assert_every_frame_exactly_once(expected)
    assert (BEHIND_RUN_PGBOUNCER_NAME in seen) is RUN_PGBOUNCER, seen


def application_names(database: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = %s",
            [database],
        )
        return {row[0] for row in cursor.fetchall()}
