"""What both benchmarks share: their database, a real worker, and the printed table."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SETTINGS = "bench.settings"


def setup_django() -> None:
    """Configure Django with the benchmark settings (starts the embedded server if needed)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    import django

    django.setup()


def tick(task: Any) -> Any:
    """One coordinator tick of ``task``, as the ``coordinate`` actor runs it."""
    from stream_analysis import coordinator

    return coordinator.tick(task)


def create_frames(frame_class: Any, count: int, first: datetime) -> None:
    """``count`` pending frames from ``first`` on, by the framework's own bulk insert."""
    from stream_analysis import coordinator, grid

    duration = frame_class.DURATION
    planned = grid.FrameRange(first, first + (count - 1) * duration, duration)
    coordinator.insert_frames(frame_class, planned)
    sql(f"ANALYZE {frame_class._meta.db_table}")


def libpq_kwargs(dbname: str | None = None) -> dict[str, Any]:
    """libpq keywords of the benchmark database (or of ``dbname`` on the same server)."""
    from actors.broker import connection_kwargs

    kwargs = connection_kwargs()
    kwargs["application_name"] = "stream_analysis-bench"
    if dbname is not None:
        kwargs["dbname"] = dbname
    return kwargs


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(**libpq_kwargs("postgres"), autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def bench_session() -> Iterator[None]:
    """Django set up, a benchmark database of its own, and the command and server printed."""
    setup_django()
    with bench_database():
        print(f"$ {command_line()}")
        print(f"PostgreSQL {server_version()}")
        yield


@contextmanager
def bench_database() -> Iterator[str]:
    """Create the benchmark database afresh, migrate it, and drop it afterwards."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, connections

    name = settings.DATABASES["default"]["NAME"]
    quoted = connection.ops.quote_name(name)
    _admin(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    _admin(f"CREATE DATABASE {quoted}")
    try:
        call_command("migrate", verbosity=0)
        yield name
    finally:
        _close_broker_pool()
        connections.close_all()
        _admin(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")


def _close_broker_pool() -> None:
    import dramatiq

    pool = getattr(dramatiq.get_broker(), "pool", None)
    if pool is not None:
        pool.close()


def server_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return str(cursor.fetchone()[0])


def sql(statement: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
    """Run one statement on Django's connection; return the first row, if any."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone() if cursor.description else None


def command_line() -> str:
    """How this script was run, as a shell command."""
    return shlex.join([Path(sys.executable).name, "-m", _main_module(), *sys.argv[1:]])


def _main_module() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name if spec is not None else sys.argv[0]


class Worker:
    """A real ``dramatiq`` worker (``--processes`` x ``--threads``) on the benchmark database."""

    def __init__(self, processes: int, threads: int, env: dict[str, str] | None = None) -> None:
        self.processes = processes
        self.command = [
            sys.executable, "-m", "dramatiq", "django_dramatiq.setup", "actors.tasks",
            "--processes", str(processes), "--threads", str(threads), "--path", str(REPO),
        ]  # fmt: skip
        self.extra_env = env or {}
        self.log = Path(tempfile.mkstemp(prefix="bench-worker-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def shown_command(self) -> str:
        return shlex.join(["python", *self.command[1:-1], "."])

    def __enter__(self) -> Worker:
        from django.db import connection

        from stream_analysis.database import database_url

        sql("TRUNCATE dramatiq.worker")
        env = dict(os.environ)
        env.update(
            DATABASE_URL=database_url(connection.settings_dict),
            DJANGO_SETTINGS_MODULE=SETTINGS,
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        )
        env.update(self.extra_env)  # may point DATABASE_URL elsewhere (bench.hosts: PgBouncer)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                self.command, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=REPO,
            )  # fmt: skip
        self._wait_ready(timeout=60)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Wait until every worker process has registered with the broker."""
        deadline = time.monotonic() + timeout
        while sql("SELECT count(*) FROM dramatiq.worker")[0] < self.processes:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"the worker exited; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start in {timeout} s; see {self.log}")
            time.sleep(0.1)

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if exc_type is None:
            self.log.unlink(missing_ok=True)
        else:
            print(f"worker log: {self.log}", file=sys.stderr)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print a plain-text table, numbers right-aligned."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  ".join(_align(v, w, i) for i, (v, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return (
            f"{value:,.3f}" if value < 1 else f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
        )
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _align(value: str, width: int, column: int) -> str:
    return value.ljust(width) if column == 0 else value.rjust(width)
