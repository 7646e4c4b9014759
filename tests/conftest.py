"""Fixtures: real PostgreSQL (pytest-django's test database) and real worker processes."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from stream_analysis import signals
from stream_analysis.database import database_url
from tests import brokers
from tests.brokers import RUN_BROKER, Transport, ready_processes
from tests.pgbouncer import PgBouncer

# The shared assertions in these helper modules report like a test's own (pytest only
# rewrites the asserts of test modules and conftest files by itself).
pytest.register_assert_rewrite("tests.streams")

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def poll(predicate: Callable[[], object], timeout: float, what: str) -> Any:
    """Poll ``predicate`` until it is truthy and return its value; raise TimeoutError
    after ``timeout`` seconds (safe in any thread, unlike :func:`wait_until`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> Any:
    """:func:`poll` in a test: fail the test after ``timeout`` seconds."""
    try:
        return poll(predicate, timeout, what)
    except TimeoutError as timeout_error:
        pytest.fail(str(timeout_error))


#: The tasks most tests count on (tests/settings.py configures more).
THREE_TASKS = ("counts", "flaky", "minutely")


def configure_only(settings: Any, *keys: str) -> None:
    """Keep only the tasks ``keys`` of the configured ones (``settings``: pytest-django's)."""
    configured = settings.ANALYSIS_TIME_FRAME_TASKS
    settings.ANALYSIS_TIME_FRAME_TASKS = {key: configured[key] for key in keys}


@pytest.fixture
def three_tasks(settings: Any) -> None:
    """Only the tasks these tests count on, whatever else tests/settings.py configures."""
    configure_only(settings, *THREE_TASKS)


@pytest.fixture
def ticks() -> Iterator[list[str]]:
    """The task keys for which the runtime was asked to tick now."""
    keys: list[str] = []

    def record(sender: Any, task: Any, **kwargs: Any) -> None:
        keys.append(task.key)

    signals.tick_requested.connect(record, weak=False)
    yield keys
    signals.tick_requested.disconnect(record)


@contextmanager
def held_in_another_transaction(take: Callable[[], object]) -> Iterator[None]:
    """Run ``take()`` (take a lock) in another thread's transaction; hold it for the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                take()
                held.set()
                release.wait(30)
        finally:
            held.set()
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(30)
        yield
    finally:
        release.set()
        holder.join()


@pytest.fixture
def legacy_tasks(settings: Any) -> None:
    """The legacy client's ANALYSIS_TIME_FRAME_TASKS (tests/legacy_client/settings.py), as
    its worker processes see them."""
    from tests.legacy_client import settings as legacy_settings

    settings.ANALYSIS_TIME_FRAME_TASKS = copy.deepcopy(legacy_settings.ANALYSIS_TIME_FRAME_TASKS)


class Processes:
    """The child processes of one test, each the leader of a session (a process group)
    of its own; :func:`processes` is the fixture that every test starting one uses.

    Whatever is still running when the test ends, passed or failed, is killed with its
    whole group (a worker's forked processes too) and its pipes are closed: no child
    outlives its test, and no "subprocess is still running" ResourceWarning fails a
    later test. Also a context manager, for a module-scoped fixture.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def start(self, command: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """``subprocess.Popen(command, **popen)`` in a new session; ``cwd`` defaults to
        the repository."""
        popen.setdefault("cwd", REPO)
        proc = subprocess.Popen(command, start_new_session=True, **popen)
        self.procs.append(proc)
        return proc

    def run(
        self, command: Sequence[str], timeout: float = 60, **popen: Any
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` to its end and return its exit status and output (text).

        Raises TimeoutExpired after ``timeout`` seconds; the process is killed at teardown.
        """
        proc = self.start(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          **popen)  # fmt: skip
        stdout, stderr = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    def kill_all(self) -> None:
        for proc in self.procs:
            # Only while the leader is not reaped: its pid, the group's id, cannot be
            # reused by another process yet.
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.wait()

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill_all()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Start child processes with ``processes.start()`` or ``.run()``; killed after the test."""
    with Processes() as started:
        yield started


#: TEST_PGBOUNCER=1: the processes the tests start (workers, schedulers, commands) reach
#: PostgreSQL through one PgBouncer of the run's own, in transaction pooling with
#: :data:`RUN_POOL` server connections, as behind a hosted PostgreSQL's; the test process
#: itself connects directly. Started by the ``run_pgbouncer`` fixture.
RUN_PGBOUNCER = os.environ.get("TEST_PGBOUNCER") == "1"
RUN_POOL = 8
_run_bouncer: list[PgBouncer] = []  # the run's PgBouncer, once run_pgbouncer started it


def run_bouncer() -> PgBouncer | None:
    """The run's PgBouncer (TEST_PGBOUNCER=1), once started; else None."""
    return _run_bouncer[0] if _run_bouncer else None


def worker_env(**extra: str) -> dict[str, str]:
    """Environment of a child process that uses this test run's database (through the
    run's PgBouncer with TEST_PGBOUNCER=1, unless ``extra`` names a DATABASE_URL of its
    own); ``extra`` wins."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(connection.settings_dict),
        DJANGO_SETTINGS_MODULE="tests.settings",
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    if RUN_PGBOUNCER and "DATABASE_URL" not in extra:
        bouncer = run_bouncer()
        if bouncer is None:
            raise RuntimeError("TEST_PGBOUNCER=1, but the run's PgBouncer is not started")
        env.update(pgbouncer_worker_env(bouncer, name=BEHIND_RUN_PGBOUNCER_NAME))
    env.update(extra)
    return env


#: Runs the command after it (``[*WITH_DEFAULT_SIGINT, *command]``) with SIGINT at its
#: default, so that a Python child raises KeyboardInterrupt on SIGINT. Without it a
#: child inherits SIG_IGN from a test run started in the background by a shell
#: without job control (``pytest &`` in a script, some CI and agent runners), and
#: Python then installs no KeyboardInterrupt handler: SIGINT does nothing.
WITH_DEFAULT_SIGINT = (
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
)


def registered_workers() -> set[str]:
    """Ids of the worker processes dramatiq-postgres has seen (one row per process)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT worker_id FROM dramatiq.worker")
        return {str(row[0]) for row in cursor.fetchall()}


class Workers:
    """Real ``dramatiq`` worker processes, each in its own process group."""

    def __init__(self, log_dir: Path, processes: Processes) -> None:
        self.log_dir = log_dir
        self.processes = processes
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        processes: int = 1,
        threads: int = 4,
        args: Sequence[str] = (),
        wait: bool = True,
        **env: str,
    ) -> subprocess.Popen[bytes]:
        """Start a worker; return once its processes have registered with the broker
        (at once with ``wait=False``, for a worker that cannot reach the database).

        ``args`` are more ``dramatiq`` options (``--watch DIR``); ``env`` adds to
        (or overrides) :func:`worker_env`.

        Waiting matters: a worker already running prefetches every queued message,
        so one started later may otherwise find nothing left to do. On RabbitMQ and
        Redis the wait ends at the "ready" log line, just before the worker consumes.
        """
        before = self.up()
        command = [
            sys.executable, "-m", "dramatiq", "django_dramatiq.setup", "actors.tasks",
            "--processes", str(processes), "--threads", str(threads), "--path", str(REPO), *args,
        ]  # fmt: skip
        with open(self.log_dir / f"worker-{len(self.procs)}.log", "wb") as log:
            proc = self.processes.start(
                command, env=worker_env(**env), stdout=log, stderr=subprocess.STDOUT
            )
        self.procs.append(proc)
        if not wait:
            return proc
        wait_until(
            lambda: proc.poll() is not None or len(self.up() - before) >= processes,
            60,
            "the worker processes to register with the broker",
        )
        return proc

    def up(self) -> set[str]:
        """Ids of the worker processes up (a restarted one anew): the rows of
        dramatiq-postgres' table of workers, or on RabbitMQ and Redis, which keep none,
        the processes that logged they are ready."""
        if RUN_BROKER == "postgres":
            return registered_workers()
        return ready_processes(self.log_dir.glob("worker-*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.log_dir.glob("worker-*.log"))
        )


@pytest.fixture(scope="session", autouse=True)
def run_pgbouncer(django_db_setup: None) -> Iterator[PgBouncer | None]:
    """With TEST_PGBOUNCER=1, the run's PgBouncer in front of the test database (see
    :data:`RUN_PGBOUNCER`), from the start of the run to its end; else None."""
    if not RUN_PGBOUNCER:
        yield None
        return
    bouncer = PgBouncer(connection.settings_dict, pool_size=RUN_POOL).start()
    _run_bouncer.append(bouncer)
    try:
        yield bouncer
    finally:
        _run_bouncer.clear()
        bouncer.stop()


@pytest.fixture
def live_db(transactional_db: None) -> Iterator[None]:
    """Committed data (other processes see it); the broker's queue is emptied afterwards."""
    yield
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE dramatiq.queue, dramatiq.worker, dramatiq.result")


@pytest.fixture
def workers(
    live_db: None, tmp_path: Path, processes: Processes, request: pytest.FixtureRequest
) -> Iterator[Workers]:
    """Start real worker processes with ``workers.start()``; they stop after the test
    (SIGTERM, as a supervisor would; ``processes`` kills what is left)."""
    group = Workers(tmp_path, processes)
    yield group
    group.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(group.logs())


@pytest.fixture
def pgbouncer(live_db: None) -> Iterator[PgBouncer]:
    """A PgBouncer (transaction pooling, 4 server connections) in front of the test
    database's server; killed after the test."""
    bouncer = PgBouncer(connection.settings_dict, pool_size=4).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture
def through_pgbouncer(pgbouncer: PgBouncer) -> Iterator[PgBouncer]:
    """This process's Django connections go through ``pgbouncer`` for the test."""
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    connection.close()
    settings_dict.update(pgbouncer.settings_dict(saved))
    try:
        yield pgbouncer
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)


#: The application_name of the sessions a worker opens through a test's own PgBouncer.
BEHIND_PGBOUNCER_NAME = "stream_analysis-behind-pgbouncer"
#: ... and through the run's PgBouncer (TEST_PGBOUNCER=1), told apart from those.
BEHIND_RUN_PGBOUNCER_NAME = "stream_analysis-behind-run-pgbouncer"


def pgbouncer_worker_env(
    bouncer: PgBouncer, broker: str = "direct", name: str = BEHIND_PGBOUNCER_NAME
) -> dict[str, str]:
    """Environment of a worker behind ``bouncer``: Django through it, and the broker
    directly (``direct``: its LISTEN needs a session) or through it too, polling
    (``pooled``). Its sessions through PgBouncer have the application_name ``name``."""
    url = bouncer.url(connection.settings_dict["NAME"])
    env = {"DATABASE_URL": f"{url}?application_name={name}", "BEHIND_PGBOUNCER": "1"}
    if broker == "direct":
        env["DIRECT_DATABASE_URL"] = database_url(connection.settings_dict)
    else:
        env["BROKER_LISTEN"] = "0"
    return env


@pytest.fixture(scope="session", autouse=True)
def close_broker_pool(django_db_setup: None) -> Iterator[None]:
    """Close the broker's connections before the test database is dropped."""
    yield
    import dramatiq

    pool = getattr(dramatiq.get_broker(), "pool", None)
    if pool is not None:
        pool.close()


@pytest.fixture(scope="session")
def run_transport() -> Iterator[Transport | None]:
    """The run's queue or namespace on RabbitMQ or Redis (TEST_BROKER), deleted at the end;
    None on dramatiq-postgres."""
    made = brokers.run_transport()
    yield made
    if made is not None:
        made.remove()


@pytest.fixture(autouse=True)
def broker_emptied(run_transport: Transport | None) -> Iterator[None]:
    """On RabbitMQ or Redis, each test's messages dropped once it has stopped its
    processes (on dramatiq-postgres, ``live_db`` truncates the broker's table)."""
    yield
    if run_transport is not None:
        run_transport.empty()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def staff_user(*codenames: str) -> Any:
    """A staff user ("ops") with these permissions of any app, e.g. "view_analysistask"."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


def at(seconds: float) -> datetime:
    """A stream time ``seconds`` after T0 (an aligned instant: a multiple of every DURATION)."""
    return T0 + timedelta(seconds=seconds)
