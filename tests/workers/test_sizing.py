"""The warning a real worker logs at start when the server's max_connections is too small
for it alone, and the budget it logs otherwise (docs/sizing.md)."""

from __future__ import annotations

import pytest
from django.db import connection

from actors.broker import POOL_SIZE
from actors.sizing import connection_budget
from tests.brokers import RUN_BROKER
from tests.conftest import wait_until

#: The broker's own connections per process: dramatiq-postgres' pool; none on RabbitMQ or
#: Redis (TEST_BROKER).
POOL = POOL_SIZE if RUN_BROKER == "postgres" else 0


def max_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        return int(cursor.fetchone()[0])


def budget_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[actors.sizing]" in line]


@pytest.mark.workers
def test_a_worker_too_big_for_max_connections_warns_once_at_start(workers):
    # Given a server's max_connections, and a worker of 2 processes with enough threads
    # that, by the budget, it alone can exceed it
    limit = max_connections()
    threads = limit // 2 + 1
    budget = connection_budget(2, threads, POOL)
    assert budget > limit

    # When it starts
    workers.start(processes=2, threads=threads)

    # Then it logs one warning, from one of its processes, with the numbers
    wait_until(
        lambda: workers.logs().count("Worker process is ready for action") == 2,
        30,
        "both processes past their boot",
    )
    wait_until(lambda: budget_lines(workers.logs()), 30, "the connection budget checked")
    workers.stop()  # a second warning, had the other process checked too, is in the log now
    (line,) = budget_lines(workers.logs())
    assert "[WARNING]" in line
    assert (
        f"this worker (2 processes x {threads} threads) can open up to {budget} database "
        f"connections, more than the server's max_connections ({limit})"
    ) in line


@pytest.mark.workers
def test_a_worker_within_max_connections_logs_its_budget_without_a_warning(workers):
    workers.start(processes=1, threads=2)

    wait_until(lambda: budget_lines(workers.logs()), 30, "the connection budget checked")
    (line,) = budget_lines(workers.logs())
    budget = connection_budget(1, 2, POOL)  # 7 on dramatiq-postgres, 2 on RabbitMQ or Redis
    assert "[INFO]" in line
    assert (
        f"this worker (1 processes x 2 threads) can open up to {budget} database connections "
        f"(server's max_connections: {max_connections()})"
    ) in line
