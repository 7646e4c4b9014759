"""Fault injection: real PostgreSQL, real worker and scheduler processes, a live stream.

Each scenario streams at least 500 one-second frames of stream time, faster than
the wall clock, while the real coordinator (re-armed every second, ticked by a
real periodiq) creates the frames as the stream advances and real workers
calculate them. Then every frame is checked: it exists once (no gap, no extra
frame), its calculate() committed exactly once (one CalculationLog row), and its
item_count is the true count of its window.

CI runs the short version; FAULTS_LONG=1 runs the long one (more frames, more
faults). The figures are printed at the end of the session.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.db import connection

import stream_analysis
from actors import tasks
from tests.brokers import RUN_BROKER
from tests.conftest import configure_only, wait_until
from tests.testapp.models import (
    Behaviour,
    CountFrame,
    MinuteOfSeconds,
    SecondFrame,
    SecondSqlFrame,
    TenSecondRollup,
)

from .conftest import routes
from .harness import (
    LONG,
    RESULTS,
    SECOND,
    T0,
    Cluster,
    Database,
    Fault,
    StreamWriter,
    ThrowawayServer,
    Verdict,
    all_done,
    first_calculated_after,
    judge,
    now,
    read_frames,
    scale,
    window_truth,
)

pytestmark = [pytest.mark.faults, pytest.mark.workers, pytest.mark.timeout(scale(300, 2400))]

SECONDS = SecondFrame._meta.db_table
SECONDS_SQL = SecondSqlFrame._meta.db_table
COUNTS = CountFrame._meta.db_table
FRAMES = scale(500, 3000)
#: Tasks beside "seconds" in scenarios 2 to 4: its stream counted by AGGREGATES, and two
#: levels of rollups over its frames (10 s, then a minute). Each is judged like it.
COMPANIONS = ("seconds_sql", "ten_seconds", "minute_of_seconds")
#: How the table names the run's broker (TEST_BROKER: tests/brokers.py).
BROKER_LABELS = {"postgres": "", "rabbitmq": ", RabbitMQ", "redis": ", Redis"}
#: Seconds to wait for every frame to be done once the stream has ended.
DRAIN = scale(120, 600)


@dataclass(frozen=True)
class Output:
    """A frame model the scenario checks, and the true counts of its frames."""

    label: str
    table: str
    model: str
    truth: dict[datetime, int]
    #: False for AGGREGATES frames, which write no CalculationLog rows.
    logged: bool = True
    #: A rollup: a frame computed while a source frame was being recomputed is put
    #: right once that recalculation is seen (after TIME_BUDGET + FRAME_TIME_LIMIT),
    #: so the scenario waits for its counts to settle, not only for every frame done.
    settles: bool = False


@dataclass
class Scenario:
    """One run: a stream, a cluster, the faults injected, the verdicts."""

    name: str
    db: Database
    stream: StreamWriter
    cluster: Cluster
    faults: list[Fault] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def begin(self, workers: int = 2, threads: int = 3, schedulers: int = 1) -> None:
        """Workers first, then the stream; the scheduler's first tick finds data."""
        self.cluster.start_workers(workers, threads)
        self.stream.start()
        self.stream.wait_written(5)
        self.cluster.start_schedulers(schedulers)

    def seconds_output(self) -> Output:
        return Output(self.name, SECONDS, "SecondFrame", self.stream.truth)

    def companion_outputs(self) -> list[Output]:
        """The :data:`COMPANIONS`' frames: the same counts, by SQL and summed up."""
        truth = self.stream.truth
        return [
            Output(f"{self.name}, AGGREGATES", SECONDS_SQL, "SecondSqlFrame", truth,
                   logged=False),
            Output(f"{self.name}, 10-s rollup", TenSecondRollup._meta.db_table,
                   "TenSecondRollup", window_truth(truth, TenSecondRollup.DURATION),
                   settles=True),
            Output(f"{self.name}, minute rollup", MinuteOfSeconds._meta.db_table,
                   "MinuteOfSeconds", window_truth(truth, MinuteOfSeconds.DURATION),
                   settles=True),
        ]  # fmt: skip

    def finish_with_companions(self) -> Verdict:
        """:meth:`finish` for SecondFrame and its companions, each asserted clean;
        returns SecondFrame's verdict."""
        verdict, *companions = self.finish(self.seconds_output(), *self.companion_outputs())
        for companion in companions:
            assert_clean(companion)
        return verdict

    def judged(self, output: Output) -> Verdict:
        """``output``'s frames read back and compared with the truth, now; its row says
        when the processes went through PgBouncer, and names the run's broker
        (TEST_BROKER) unless it is dramatiq-postgres."""
        via = ", via PgBouncer" if self.cluster.via is not None else ""
        return judge(
            output.label + via + BROKER_LABELS[RUN_BROKER], self.db, output.table,
            output.model, output.truth, len(self.faults), logged=output.logged,
        )  # fmt: skip

    def finish(self, *outputs: Output) -> list[Verdict]:
        """Wait for the stream's end and every frame done; judge each output."""
        outputs = outputs or (self.seconds_output(),)
        last_item = self.stream.finish()
        verdicts = []
        try:
            for output in outputs:
                wait_until(
                    lambda o=output: (
                        all_done(self.db, o.table, len(o.truth))
                        and (not o.settles or self.judged(o).clean)
                    ),
                    DRAIN,
                    f"{len(output.truth)} {output.model} frames calculated or failed"
                    + (", with their true counts" if output.settles else ""),
                )
        finally:
            for output in outputs:
                verdict = self.judged(output)
                done_at = latest_done(self.db, output.table)
                verdict.catch_up = None if done_at is None else done_at - last_item
                verdict.seconds = time.monotonic() - self.started
                RESULTS.append(verdict)
                verdicts.append(verdict)
        return verdicts


def latest_done(db: Database, table: str) -> float | None:
    """When the last frame was calculated (its data read), on the time.monotonic() clock."""
    newest = db.value(f"SELECT max(calculated_at) FROM {table}")
    return None if newest is None else time.monotonic() - (now() - newest).total_seconds()


def assert_clean(verdict: Verdict) -> None:
    assert verdict.clean, verdict.summary()
    assert not verdict.failed, verdict.summary()


# -- 1. workers killed ----------------------------------------------------------------


@routes("direct", "pgbouncer")
def test_twenty_random_sigkills_of_workers_lose_and_duplicate_no_frame(route, shared_db, clusters):
    # Given three workers (restarted by a supervisor when they die) and a live stream
    kills = scale(20, 100)
    rate = 20.0
    where = route.begin(connection.settings_dict)
    run = Scenario(
        "1. workers SIGKILLed",
        shared_db,
        StreamWriter(shared_db, FRAMES, rate),
        # every frame takes 30 ms: batches keep transactions open for a kill to cut;
        # the same stream is also counted by AGGREGATES (the batch path)
        clusters(shared_db, ["seconds", "seconds_sql"], TEST_CALCULATE_SLEEP="0.03", **where),
    )
    run.begin(workers=3, threads=3)

    # When random worker processes (or their whole group) get SIGKILL all along the stream
    rng = random.Random(1)
    begin, every = time.monotonic(), FRAMES / rate / kills
    for k in range(kills):
        planned = begin + (k + rng.uniform(0.2, 0.8)) * every
        time.sleep(max(0.0, planned - time.monotonic()))  # the kill schedule, not a wait
        run.faults.append(run.cluster.kill_random_worker(rng, wait_for_transaction=1.0))

    # Then every frame of both tasks is calculated exactly once, with its true count
    aggregated = Output(
        f"{run.name}, AGGREGATES", SECONDS_SQL, "SecondSqlFrame",
        run.stream.truth,
        logged=False,
    )  # fmt: skip
    verdict, sql_verdict = run.finish(run.seconds_output(), aggregated)
    assert_clean(sql_verdict)
    verdict.recovery = first_calculated_after(shared_db, SECONDS, [f.until for f in run.faults])
    cut = sum(1 for fault in run.faults if fault.open_transactions)
    verdict.notes = (
        f"{kills} SIGKILLs of 3 workers x 3 threads ({cut} with transactions open), "
        f"{run.cluster.restarts} restarts; recovery: a kill to the next frame calculated"
    )
    assert_clean(verdict)
    assert run.cluster.restarts == kills


# -- 2. doubled schedulers and coordinators ----------------------------------------------


def test_three_schedulers_and_three_coordinators_at_once_make_each_frame_once(shared_db, clusters):
    # Given three workers and three periodiq schedulers, all ticking
    run = Scenario(
        "2. 3 schedulers, 3 coordinators",
        shared_db,
        StreamWriter(shared_db, FRAMES, 40.0),
        clusters(shared_db, ["seconds", *COMPANIONS]),
    )
    run.begin(workers=3, threads=2, schedulers=3)

    # When, all along the stream, three coordinator ticks are sent at once, again and again
    bursts = 0
    while run.stream.is_alive():
        for _ in range(3):
            tasks.coordinate.send("seconds")
        bursts += 1
        time.sleep(0.25)
    wait_until(run.cluster.schedulers_ticked, 70, "all three schedulers to tick")

    # Then every frame was made once and calculated once (its companions' too)
    verdict = run.finish_with_companions()
    verdict.faults = bursts
    verdict.notes = (
        f"3 periodiq processes ticking, and {bursts} bursts of 3 simultaneous coordinator "
        "ticks on 3 workers x 2 threads"
    )
    assert_clean(verdict)


# -- 3. the coordinator killed mid-INSERT ------------------------------------------------


@pytest.fixture
def slow_frame_inserts(shared_db: Database):
    """A trigger that makes the frame INSERT sleep once it has written its rows,
    for as many seconds as ``fault_control.slow_seconds`` says (0 at first)."""
    statements = [
        "CREATE TABLE fault_control (slow_seconds float NOT NULL)",
        "INSERT INTO fault_control VALUES (0)",
        "CREATE FUNCTION fault_slow_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "PERFORM pg_sleep((SELECT slow_seconds FROM fault_control)); RETURN NULL; END $$",
        f"CREATE TRIGGER fault_slow_insert AFTER INSERT ON {SECONDS} "
        "FOR EACH STATEMENT EXECUTE FUNCTION fault_slow_insert()",
    ]
    for statement in statements:
        shared_db.execute(statement)
    yield lambda seconds: shared_db.execute("UPDATE fault_control SET slow_seconds = %s",
                                            (seconds,))  # fmt: skip
    shared_db.execute(f"DROP TRIGGER IF EXISTS fault_slow_insert ON {SECONDS}")
    shared_db.execute("DROP FUNCTION IF EXISTS fault_slow_insert()")
    shared_db.execute("DROP TABLE IF EXISTS fault_control")


def sleeping_insert(db: Database, seen: set[int]) -> tuple[int, str] | None:
    """(backend pid, application_name) of a frame INSERT asleep in the trigger."""
    rows = db.rows(
        "SELECT pid, application_name FROM pg_stat_activity "
        "WHERE wait_event = 'PgSleep' AND query LIKE %s",
        (f'%INSERT INTO "{SECONDS}"%',),  # after the query's leading comment
    )
    fresh = [row for row in rows if row[0] not in seen]
    return (fresh[0][0], fresh[0][1]) if fresh else None


def newest_frame(db: Database) -> datetime:
    newest = db.value(f"SELECT max(start_time) FROM {SECONDS}")
    return T0 - SECOND if newest is None else newest


def test_the_coordinator_killed_mid_insert_leaves_no_gap_and_no_duplicate(
    shared_db, clusters, slow_frame_inserts
):
    # Given two workers and a live stream, slow while the faults are injected
    kills = scale(3, 12)
    run = Scenario(
        "3. coordinator SIGKILLed mid-INSERT",
        shared_db,
        StreamWriter(shared_db, FRAMES, 8.0),
        clusters(shared_db, ["seconds", *COMPANIONS]),
    )
    run.begin(workers=2, threads=3)
    seen: set[int] = set()
    recoveries = []

    for _ in range(kills):
        # When a coordinator's INSERT has written its frames but not committed
        slow_frame_inserts(2.0)
        backend, worker = wait_until(
            lambda: sleeping_insert(shared_db, seen), 60, "a coordinator inside its INSERT"
        )
        seen.add(backend)
        newest = newest_frame(shared_db)
        # And its worker process is killed there
        fault = run.cluster.kill_worker_process(worker)
        run.faults.append(fault)
        slow_frame_inserts(0)
        # Then a later tick creates frames again (the killed INSERT was rolled back)
        wait_until(lambda n=newest: newest_frame(shared_db) > n, 90, "frames created again")
        recoveries.append((now() - fault.at).total_seconds())
    run.stream.rate = 60.0  # faults done: the rest of the stream at full speed

    # And in the end every frame exists once and is calculated once (its companions' too)
    verdict = run.finish_with_companions()
    verdict.recovery = recoveries
    verdict.notes = (
        f"{kills} coordinators killed inside the frame INSERT (held 2 s by a trigger); "
        "recovery: the kill to the next frames created (the killed tick's message is "
        "redelivered once the broker sees its worker dead, 5 s here, or on RabbitMQ at "
        "once: if the dead tick still holds the lock, it re-arms a second later)"
    )
    assert_clean(verdict)


# -- 4. PostgreSQL restarted ----------------------------------------------------------


@routes("direct", "pgbouncer")
def test_postgresql_restarted_mid_run_workers_and_scheduler_recover_by_themselves(
    route, throwaway_server: ThrowawayServer, clusters
):
    # Given workers, a scheduler and a live stream on a PostgreSQL server of the test's own
    # (behind a PgBouncer of the test's own, in the pgbouncer variant)
    db = throwaway_server.db
    downtimes = [2.0, 10.0, 30.0] if LONG else [3.0]
    run = Scenario(
        "4. PostgreSQL restarted",
        db,
        StreamWriter(db, FRAMES, 25.0),
        clusters(db, ["seconds", *COMPANIONS], **route.begin(throwaway_server.settings)),
    )
    run.begin(workers=2, threads=3)

    # When the server is stopped (fast shutdown: every session cut) and started again
    for index, down in enumerate(downtimes):
        run.stream.wait_written(FRAMES * (index + 1) // (len(downtimes) + 1))
        stopped = now()
        throwaway_server.stop()
        time.sleep(down)  # the outage itself
        throwaway_server.start()
        run.faults.append(Fault(f"restart, down {down} s", stopped, now()))

    # Then every frame is calculated once (its companions' too), and no process restarted
    verdict = run.finish_with_companions()
    verdict.recovery = first_calculated_after(db, SECONDS, [f.until for f in run.faults])
    verdict.notes = (
        "stop -m fast, down " + ", ".join(f"{d:g} s" for d in downtimes) + ", start; "
        "recovery: the server back up to the next frame calculated"
    )
    assert_clean(verdict)
    assert run.cluster.restarts == 0, "a worker died and was restarted"
    assert all(proc.poll() is None for proc in run.cluster.schedulers), "periodiq died"


# -- 5. calculate() failing at random -----------------------------------------------------


def planned_failures(frames: int, rate: float, attempts: int, seed: int) -> dict[datetime, int]:
    """Per frame start, how many leading attempts fail when each fails with ``rate``."""
    rng = random.Random(seed)
    plan = {}
    for i in range(frames):
        failures = 0
        while failures < attempts and rng.random() < rate:
            failures += 1
        if failures:
            plan[T0 + i * SECOND] = failures
    return plan


def test_a_calculate_failing_20_percent_of_the_time_ends_every_frame_done_or_failed(
    shared_db, clusters
):
    # Given a calculate() whose every attempt fails with probability 0.2 (3 attempts a frame)
    plan = planned_failures(FRAMES, 0.2, 3, seed=5)
    Behaviour.objects.bulk_create(
        Behaviour(frame_start=start, failures=failures) for start, failures in plan.items()
    )
    run = Scenario(
        "5. calculate() fails 20%",
        shared_db,
        StreamWriter(shared_db, FRAMES, 40.0),
        clusters(shared_db, ["seconds"]),
    )
    run.begin(workers=2, threads=3)

    (verdict,) = run.finish()
    frames = read_frames(shared_db, SECONDS)
    doomed = {start for start, failures in plan.items() if failures >= 3}
    verdict.faults = sum(plan.values())
    verdict.notes = (
        f"{sum(plan.values())} failed attempts over {len(plan)} frames; "
        f"{len(doomed)} frames failed all 3 attempts"
    )

    # Then no frame is lost: each is calculated after its planned failures, or failed
    assert verdict.clean, verdict.summary()
    assert set(verdict.failed) == doomed
    for start, frame in frames.items():
        if start in doomed:
            assert frame.attempts == 3
            assert frame.last_error.startswith("Traceback")
            assert "RuntimeError: planned failure 3 of" in frame.last_error
        else:
            assert (frame.attempts, frame.last_error) == (plan.get(start, 0) + 1, "")


# -- 6. a hung calculate() -------------------------------------------------------------


def test_a_hung_calculate_is_interrupted_retried_and_blocks_no_other_frame(
    shared_db, clusters, tmp_path: Path
):
    # Given frames whose first attempt hangs for ten minutes, and a frame time limit of 2 s
    hangs = scale(3, 10)
    limit = 2.0
    hung = {T0 + SECOND * (FRAMES * (k + 1) // (hangs + 2)): tmp_path / f"hang-{k}.pid"
            for k in range(hangs)}  # fmt: skip
    Behaviour.objects.bulk_create(
        Behaviour(frame_start=start, stall_marker=str(marker), sleep_seconds=600)
        for start, marker in hung.items()
    )
    env = {"STREAM_ANALYSIS_TIME_BUDGET": "1", "STREAM_ANALYSIS_FRAME_TIME_LIMIT": str(limit)}
    run = Scenario(
        "6. calculate() hangs",
        shared_db,
        StreamWriter(shared_db, FRAMES, 40.0),
        clusters(shared_db, ["seconds"], **env),
    )
    run.begin(workers=2, threads=3)

    (verdict,) = run.finish()
    frames = read_frames(shared_db, SECONDS)
    verdict.faults = hangs
    verdict.notes = (
        f"{hangs} frames hang on their first attempt; FRAME_TIME_LIMIT {limit:g} s, "
        "TIME_BUDGET 1 s; recovery: the hang's start to that frame calculated"
    )
    assert_clean(verdict)

    # Then each hung frame was interrupted, retried once, and calculated
    for start, marker in hung.items():
        assert marker.exists(), f"the frame {start} never hung"
        began = datetime.fromtimestamp(marker.stat().st_mtime, tz=T0.tzinfo)
        frame = frames[start]
        assert (frame.calculated, frame.attempts) == (True, 2)
        verdict.recovery.append((frame.calculated_at - began).total_seconds())
        # And other frames were calculated while it hung
        during = [
            f for f in frames.values()
            if f.start != start and f.calculated_at and began < f.calculated_at
            and f.calculated_at < began + timedelta(seconds=limit)
        ]  # fmt: skip
        assert during, f"no frame was calculated while {start} hung"


# -- 7. two tasks over one stream, with cleanup running -----------------------------------


class Cleaner(threading.Thread):
    """stream_analysis.cleanup() in a loop, as fast as it goes, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="cleaner")
        self.deleted = 0
        self.runs = 0
        self.error: BaseException | None = None
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.deleted += stream_analysis.cleanup()
                self.runs += 1
                time.sleep(0.02)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
        if self.error is not None:
            raise self.error


def test_cleanup_running_all_along_deletes_no_item_a_task_still_needs(
    shared_db, clusters, settings
):
    # Given two tasks over one stream: one-second frames and 15-second frames
    configure_only(settings, "seconds", "counts")
    run = Scenario(
        "7. cleanup, 2 tasks",
        shared_db,
        StreamWriter(shared_db, FRAMES, 30.0),
        clusters(shared_db, ["seconds", "counts"]),
    )
    cleaner = Cleaner()
    run.begin(workers=2, threads=3)

    # When cleanup() runs in a loop all along
    cleaner.start()
    try:
        run.stream.finish()
        deleted_while_streaming = cleaner.deleted
        seconds, counts = run.finish(
            Output("7. cleanup, 1-s task", SECONDS, "SecondFrame", run.stream.truth),
            Output("7. cleanup, 15-s task", COUNTS, "CountFrame",
                   window_truth(run.stream.truth, CountFrame.DURATION)),
        )  # fmt: skip
    finally:
        cleaner.stop()
    for verdict in (seconds, counts):
        verdict.notes = (
            f"{cleaner.runs} cleanup() runs deleted {cleaner.deleted} of {run.stream.items} "
            f"items, {deleted_while_streaming} of them while the stream ran"
        )

    # Then both tasks counted every item of every frame: nothing was deleted too early
    assert_clean(seconds)
    assert_clean(counts)
    # And cleanup did delete while the stream ran, and all but the newest frames' items in the end
    assert deleted_while_streaming > 0
    assert cleaner.deleted > run.stream.items * 0.9


# -- 8. two levels of rollups, workers killed --------------------------------------------


def test_two_levels_of_rollups_stay_consistent_while_workers_are_killed(
    shared_db, clusters, settings
):
    # Given 1 s frames, their 10 s rollup and its minute rollup, on three workers
    levels = ("seconds", "ten_seconds", "minute_of_seconds")
    configure_only(settings, *levels)
    kills = scale(8, 40)
    rate = 20.0
    run = Scenario(
        "8. rollups, SIGKILLs",
        shared_db,
        StreamWriter(shared_db, FRAMES, rate),
        clusters(shared_db, list(levels), TEST_CALCULATE_SLEEP="0.02"),
    )
    run.begin(workers=3, threads=3)

    # When random worker processes get SIGKILL all along the stream
    rng = random.Random(8)
    begin, every = time.monotonic(), FRAMES / rate / kills
    for k in range(kills):
        planned = begin + (k + rng.uniform(0.2, 0.8)) * every
        time.sleep(max(0.0, planned - time.monotonic()))  # the kill schedule, not a wait
        run.faults.append(run.cluster.kill_random_worker(rng, wait_for_transaction=1.0))

    # Then each level's every frame is calculated exactly once, with the true sum of its items
    truth = run.stream.truth
    verdicts = run.finish(
        run.seconds_output(),
        Output("8. rollups, 10-s level", TenSecondRollup._meta.db_table, "TenSecondRollup",
               window_truth(truth, TenSecondRollup.DURATION), settles=True),
        Output("8. rollups, minute level", MinuteOfSeconds._meta.db_table, "MinuteOfSeconds",
               window_truth(truth, MinuteOfSeconds.DURATION), settles=True),
    )  # fmt: skip
    for verdict in verdicts:
        verdict.notes = f"{kills} SIGKILLs of 3 workers x 3 threads; 3 levels: 1 s, 10 s, 1 min"
        assert_clean(verdict)
