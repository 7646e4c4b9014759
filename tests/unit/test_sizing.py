"""A worker's connection budget, and the warning it would give for a server's
max_connections (docs/sizing.md); tests/workers/test_sizing.py sees a real worker log it."""

from __future__ import annotations

import multiprocessing

import pytest

from actors.sizing import budget_warning, connection_budget, dramatiq_processes


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
