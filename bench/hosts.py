"""Many worker "hosts" behind one PgBouncer: throughput and the server connections.

Run from the repository root (Debian's ``pgbouncer`` installed)::

    python -m bench.hosts [--hosts 1 2 4] [--frames 6000] [--threads 4] [--pool 4]

For each N, ``--frames`` pending frames are created and N "hosts" are started:
separate process groups, each its own ``dramatiq`` worker (1 process x
``--threads``), all through one PgBouncer in transaction pooling mode whose pool
(``--pool`` server connections) is far smaller than their threads. Then
``calculate`` messages are sent (one per thread) and the backlog drained. Printed
per N: frames/s (first to last ``calculated_at``) and the peak of server
connections on the benchmark database (``pg_stat_activity``, sampled every 50 ms;
this script's own sessions, for sending and watching, not counted).

``--broker pooled`` (the default) runs dramatiq-postgres through PgBouncer too,
polling each second instead of LISTEN (``listen=False``); ``--broker direct``
gives it a direct connection (``DATABASES['direct']``) for LISTEN: its sessions
then come on top of the pool (a listener, a consumer, and the acks and sends).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

from . import common

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hosts", description=__doc__)
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 2, 4], help="values of N")
    parser.add_argument("--frames", type=int, default=6000, help="frames drained per N")
    parser.add_argument("--threads", type=int, default=4, help="threads per host")
    parser.add_argument("--pool", type=int, default=4, help="PgBouncer's server connections")
    parser.add_argument("--broker", choices=["pooled", "direct"], default="pooled")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per drain")
    return parser.parse_args(argv)


#: The application_name of this script's own sessions (not counted).
OWN = "stream_analysis-bench"


class ConnectionSampler(threading.Thread):
    """Peak server sessions on ``database``, this script's own excepted."""

    def __init__(self, database: str) -> None:
        super().__init__(daemon=True, name="connection-sampler")
        self.database = database
        self.peak = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(**common.libpq_kwargs("postgres"), autocommit=True) as conn:
            while not self.stopping.wait(0.05):
                (total,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = %s AND application_name <> %s",
                    [self.database, OWN],
                ).fetchone()  # type: ignore[misc]
                self.peak = max(self.peak, total)

    def stop(self) -> None:
        self.stopping.set()
        self.join()


def host_env(bouncer: Any, database: str, broker: str) -> dict[str, str]:
    from django.db import connection

    from stream_analysis.database import database_url

    env = {"DATABASE_URL": bouncer.url(database), "BEHIND_PGBOUNCER": "1"}
    if broker == "direct":
        env["DIRECT_DATABASE_URL"] = database_url(connection.settings_dict)
    else:
        env["BROKER_LISTEN"] = "0"
    return env


def run_hosts(n: int, args: argparse.Namespace, bouncer: Any, database: str) -> list[object]:
    """Drain ``args.frames`` frames with ``n`` hosts; the row of the printed table."""
    from bench.benchapp.models import SyntheticFrame
    from bench.throughput import drain

    common.sql(f"TRUNCATE {SyntheticFrame._meta.db_table}")
    common.sql("TRUNCATE dramatiq.queue")
    common.create_frames(SyntheticFrame, args.frames, T0)
    env = host_env(bouncer, database, args.broker)
    sampler = ConnectionSampler(database)
    with ExitStack() as hosts:
        for _ in range(n):
            hosts.enter_context(common.Worker(1, args.threads, env))
        sampler.start()
        result = drain("synthetic", SyntheticFrame, args.frames, n * args.threads, args.timeout)
        sampler.stop()
    rate = (result["done"] - 1) / result["span"] if result["span"] else float("nan")
    ok = result["done"] == args.frames and not result["failed"]
    return [
        n, n * args.threads, args.pool, sampler.peak, rate, result["done"] / result["wall"],
        "ok" if ok else "MISMATCH",
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.setup_django()
    from django.db import connection

    # this process's sessions (its Django connection, its broker's pool) are not counted
    connection.settings_dict["OPTIONS"]["application_name"] = OWN
    from tests.pgbouncer import PgBouncer

    with common.bench_database() as database:
        print(f"$ {common.command_line()}")
        print(
            f"PostgreSQL {common.server_version()} (database {database}), "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; PgBouncer in "
            f"transaction pooling, pool {args.pool}; broker {args.broker}; "
            f"each host: 1 process x {args.threads} threads"
        )
        bouncer = PgBouncer(connection.settings_dict, pool_size=args.pool).start()
        try:
            rows = []
            for n in args.hosts:
                started = time.monotonic()
                rows.append(run_hosts(n, args, bouncer, database))
                print(f"  N={n}: {time.monotonic() - started:.0f} s", flush=True)
        finally:
            bouncer.stop()
        print()
        common.print_table(
            ["hosts", "threads", "pool", "peak server conns", "frames/s", "wall frames/s",
             "check"],
            rows,
        )  # fmt: skip
        print()
        print("peak server conns: sessions on the benchmark database in pg_stat_activity")
        print("(this script's own excluded), the most seen at once while draining.")


if __name__ == "__main__":
    main()
