"""How many database connections a worker can open, and one warning at its start when
that alone is more than the server's ``max_connections`` (docs/sizing.md)."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

import dramatiq
from django.db import connections
from dramatiq_postgres import PostgresBroker

from .broker import POOL_SIZE

logger = logging.getLogger(__name__)

#: Broker connections a worker process holds besides those of its threads: the
#: consumers of the queue and of its delay queue, and the LISTEN connection.
BROKER_FIXED = 3


def connection_budget(processes: int, threads: int, pool_size: int = POOL_SIZE) -> int:
    """The most database connections a worker of ``processes`` x ``threads`` can hold.

    Per process: one Django connection per worker thread, plus the broker's pool of at
    most ``pool_size`` connections (``broker_settings(max_connections=...)``, 16 by
    default): one per worker thread sending or acknowledging, the two queue consumers
    and the listener. That is ``2 * threads + 3`` up to 13 threads, and
    ``threads + pool_size`` beyond. ``pool_size=0`` counts a broker that is not on
    PostgreSQL.
    """
    return processes * (threads + min(threads + BROKER_FIXED, pool_size))


def budget_warning(
    processes: int, threads: int, max_connections: int, pool_size: int = POOL_SIZE
) -> str | None:
    """The warning for a worker whose budget alone exceeds ``max_connections``, else None."""
    budget = connection_budget(processes, threads, pool_size)
    if budget <= max_connections:
        return None
    return (
        f"this worker ({processes} processes x {threads} threads) can open up to {budget} "
        f"database connections, more than the server's max_connections ({max_connections}), "
        "before any other worker or web process: some will be refused under load. Lower "
        "--processes or --threads (dramatiq's defaults are one process per CPU x 8 "
        "threads) or raise max_connections; see docs/sizing.md."
    )


def server_max_connections(alias: str = "default") -> int:
    """The server's ``max_connections``, read with this thread's connection to ``alias``."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SHOW max_connections")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def check_connection_budget(processes: int, threads: int, pool_size: int) -> None:
    """Log the worker's budget against the server's ``max_connections``: a warning when
    it exceeds it, else one info line. A database that cannot be reached is logged and
    the worker carries on (it retries its own connections anyway)."""
    extra = {"action": "connection_budget", "processes": processes, "threads": threads}
    try:
        max_connections = server_max_connections()
    except Exception as error:
        logger.info("could not read max_connections to check this worker's size: %s",
                    error, extra=extra)  # fmt: skip
        return
    finally:
        connections.close_all()  # this thread's only: one connection fewer for the workers
    budget = connection_budget(processes, threads, pool_size)
    extra.update(budget=budget, max_connections=max_connections)
    warning = budget_warning(processes, threads, max_connections, pool_size)
    if warning is not None:
        logger.warning(warning, extra=extra)
    else:
        logger.info(
            "this worker (%d processes x %d threads) can open up to %d database connections "
            "(server's max_connections: %d)",
            processes, threads, budget, max_connections, extra=extra,
        )  # fmt: skip


def first_worker_process() -> bool:
    """True in the first worker process ``dramatiq`` starts (Python names it
    ``Process-1``), or in a worker that runs in a process of its own making."""
    if multiprocessing.parent_process() is None:
        return True
    return multiprocessing.current_process().name == "Process-1"


def dramatiq_processes(argv: Sequence[str]) -> int | None:
    """``--processes`` of the ``dramatiq`` command line ``argv`` (default: one per CPU);
    None when ``argv`` is not one."""
    from dramatiq.cli import make_argument_parser  # only where a worker starts

    parser = make_argument_parser()
    parser.error = _not_dramatiq  # type: ignore[method-assign]  # raise, print no usage
    try:
        args, _ = parser.parse_known_args(list(argv[1:]))
    except ValueError:
        return None
    return int(args.processes)


def _not_dramatiq(message: str) -> NoReturn:
    raise ValueError(message)


class ConnectionBudget(dramatiq.Middleware):
    """Logs once per worker, at its start, how many database connections its processes
    and threads can open, and warns when that alone exceeds the server's
    ``max_connections``. The check runs in a thread of its own: a database that is
    down or slow delays nothing and crashes nothing."""

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        if not first_worker_process():
            return
        pool_size = broker.pool.max_size if isinstance(broker, PostgresBroker) else 0
        # A worker process of the ``dramatiq`` command inherits its command line.
        in_child = multiprocessing.parent_process() is not None
        processes = (dramatiq_processes(sys.argv) if in_child else None) or 1
        args = (processes, worker.worker_threads, pool_size)
        threading.Thread(
            target=check_connection_budget, args=args, name="connection-budget", daemon=True
        ).start()
