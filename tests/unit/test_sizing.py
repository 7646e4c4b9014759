"""A worker's connection budget, and the warning it logs at start when the server's
max_connections is too small for it alone (docs/sizing.md)."""

from __future__ import annotations

import multiprocessing

import pytest
from django.db import connection

from actors.sizing import budget_warning, connection_budget, dramatiq_processes
from tests.conftest import wait_until


def test_a_process_needs_two_connections_per_thread_and_three_more():
    assert connection_budget(processes=1, threads=2) == 7
    assert connection_budget(processes=2, threads=4) == 22


def test_dramatiqs_defaults_on_an_8_core_host_need_152_connections():
    assert connection_budget(processes=8, threads=8) == 152


def test_beyond_13_threads_the_broker_pool_caps_the_broker_connections():
    assert connection_budget(processes=1, threads=13) == 29
    assert connection_budget(processes=1, threads=200) == 200 + 16
    assert connection_budget(processes=1, threads=200, pool_size=40) == 240


def test_a_broker_not_on_postgresql_leaves_one_connection_per_thread():
    assert connection_budget(processes=3, threads=8, pool_size=0) == 24


def test_a_worker_within_max_connections_gets_no_warning():
    assert budget_warning(processes=2, threads=4, max_connections=22) is None


def test_a_worker_over_max_connections_gets_a_warning_naming_the_numbers_and_the_fix():
    warning = budget_warning(processes=8, threads=8, max_connections=100)

    assert warning is not None
    assert warning.startswith(
        "this worker (8 processes x 8 threads) can open up to 152 database connections, "
        "more than the server's max_connections (100)"
    )
    assert "Lower --processes or --threads" in warning
    assert "raise max_connections" in warning
    assert "docs/sizing.md" in warning


@pytest.mark.parametrize(
    ("argv", "processes"),
    [
        (["dramatiq", "django_dramatiq.setup", "actors.tasks", "--processes", "3"], 3),
        (["dramatiq", "django_dramatiq.setup", "actors.tasks", "-p", "5", "-t", "2"], 5),
        (["dramatiq", "django_dramatiq.setup", "actors.tasks"], multiprocessing.cpu_count()),
        (["pytest"], None),
    ],
)
def test_the_processes_are_read_from_the_dramatiq_command_line(argv, processes):
    assert dramatiq_processes(argv) == processes


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
    threads = limit // 2
    budget = connection_budget(2, threads)
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
    assert "[INFO]" in line
    assert (
        "this worker (1 processes x 2 threads) can open up to 7 database connections "
        f"(server's max_connections: {max_connections()})"
    ) in line
