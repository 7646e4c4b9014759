"""End to end with real worker processes: exactly once, under racing and SIGKILL."""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import Count

from actors import tasks
from tests.conftest import at, wait_until
from tests.streams import (
    assert_every_frame_exactly_once,
    calculated,
    calculations_per_frame,
    write_stream,
)
from tests.testapp.models import Behaviour, CalculationLog, CountFrame, gate_env

pytestmark = pytest.mark.workers


def test_a_stream_is_analysed_end_to_end_by_real_workers_and_ticks(workers):
    # Given a stream of 40 closed frames with known counts
    expected = write_stream(40)
    workers.start(processes=1, threads=4)

    # When the coordinator ticks (as the scheduler would)
    tasks.coordinate.send("counts")

    # Then every frame is calculated once with the true count, and no frame is open
    wait_until(lambda: calculated() == 40, 60, "40 calculated frames")
    assert_every_frame_exactly_once(expected)
    assert all(f.analysis_time is not None and f.cleanup_time is not None
               for f in CountFrame.objects.all())  # fmt: skip


def test_two_worker_processes_calculate_each_frame_exactly_once(workers, tmp_path: Path):
    # Given 150 frames whose calculate() takes a few ms, and two worker processes whose
    # frames wait at a gate until both have started one (so neither drains them alone)
    expected = write_stream(150)
    env = {"TEST_CALCULATE_SLEEP": "0.02", **gate_env(tmp_path / "gate", instances=2)}
    workers.start(processes=1, threads=2, **env)
    workers.start(processes=1, threads=2, **env)

    # When the coordinator ticks and duplicate calculate messages pile up
    tasks.coordinate.send("counts")
    # (once the frames exist: a message that finds none stops at once; and more than
    # one process holds, 2 x 2 threads of Dramatiq's prefetch, so both get some)
    wait_until(lambda: CountFrame.objects.count() == 150, 30, "the coordinator's 150 frames")
    for _ in range(8):
        tasks.calculate.send("counts")

    # Then both processes took frames, and each frame was calculated once
    wait_until(lambda: calculated() == 150, 90, "150 calculated frames")
    assert_every_frame_exactly_once(expected)
    pids = set(CalculationLog.objects.values_list("pid", flat=True))
    assert len(pids) == 2, f"expected both worker processes to calculate frames, got {pids}"


def test_a_worker_killed_mid_calculate_loses_nothing_and_duplicates_nothing(
    workers, tmp_path: Path
):
    # Given a frame whose first attempt stalls inside calculate(), after writing its log row
    expected = write_stream(12)
    victim_start = at(5 * 15)
    marker = tmp_path / "stalled.pid"
    Behaviour.objects.create(frame_start=victim_start, stall_marker=str(marker), sleep_seconds=120)
    workers.start(processes=1, threads=2)
    tasks.coordinate.send("counts")

    # When the worker process is killed with SIGKILL while in that calculate()
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), 60, "the stall"))
    assert not CountFrame.objects.get(start_time=victim_start).calculated
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), 10, "the killed worker to be gone")

    # And another worker runs, and the scheduler ticks again
    workers.start(processes=1, threads=2)
    tasks.coordinate.send("counts")

    # Then the frame is calculated later, exactly once, and so is every other frame
    wait_until(lambda: calculated() == 12, 60, "12 calculated frames")
    assert_every_frame_exactly_once(expected)
    assert pid not in set(CalculationLog.objects.values_list("pid", flat=True))


def test_a_failing_calculate_is_retried_then_succeeds(workers):
    # Given a frame whose first two attempts raise
    expected = write_stream(6)
    flaky_start = at(2 * 15)
    Behaviour.objects.create(frame_start=flaky_start, failures=2)
    workers.start(processes=1, threads=2)

    tasks.coordinate.send("counts")

    # Then it is calculated on the third attempt, and the failed attempts left no rows
    wait_until(lambda: calculated() == 6, 60, "6 calculated frames")
    assert_every_frame_exactly_once(expected)
    frame = CountFrame.objects.get(start_time=flaky_start)
    assert frame.attempts == 3
    assert frame.last_error == ""


def test_a_frame_that_fails_every_attempt_is_marked_failed_with_its_traceback(workers):
    # Given a frame that always raises (more failures than MAX_ATTEMPTS = 3)
    expected = write_stream(6)
    broken_start = at(3 * 15)
    Behaviour.objects.create(frame_start=broken_start, failures=99)
    workers.start(processes=1, threads=2)

    tasks.coordinate.send("counts")

    # Then the other frames are calculated, and the broken one ends failed, not lost
    wait_until(lambda: CountFrame.objects.filter(failed=True).exists() and calculated() == 5,
               60, "5 calculated frames and 1 failed")  # fmt: skip
    broken = CountFrame.objects.get(start_time=broken_start)
    assert (broken.calculated, broken.failed, broken.attempts) == (False, True, 3)
    assert "Traceback" in broken.last_error
    assert "planned failure 3" in broken.last_error
    del expected[broken_start]
    assert calculations_per_frame() == dict.fromkeys(expected, 1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose: its connections are closed.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_a_worker_killed_in_the_middle_of_a_rollup_batch_loses_nothing(workers, tmp_path: Path):
    from django.utils import timezone

    from stream_analysis.models import AnalysisTask
    from tests.testapp.models import Arrival, FifteenFrame, MinuteRollup

    # Given 10 minutes of arrivals, and a minute whose rollup stalls in its first calculate()
    moments = [at(s) for s in range(0, 600, 4)]
    # (arrived well before ARRIVAL_SETTLE ahead of any calculation: none of them is late)
    arrived = timezone.now() - timedelta(seconds=30)
    Arrival.objects.bulk_create(
        Arrival(created_at=m, ingested_at=arrived) for m in [*moments, at(601)]
    )
    marker = tmp_path / "stalled.pid"
    Behaviour.objects.create(frame_start=at(240), stall_marker=str(marker), sleep_seconds=120)
    workers.start(processes=1, threads=2)
    for key in ("fifteen", "minute_rollup"):
        AnalysisTask.require(key).schedule()  # ticks it
    wait_until(
        lambda: FifteenFrame.objects.filter(calculated=True).count() == 40, 60, "15 s frames"
    )
    tasks.coordinate.send("minute_rollup")

    # When the worker process is killed with SIGKILL while in that rollup's calculate()
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), 60, "the stall"))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), 10, "the killed worker to be gone")
    workers.start(processes=1, threads=2)
    tasks.coordinate.send("minute_rollup")

    # Then every minute is calculated once, with the true count
    wait_until(lambda: MinuteRollup.objects.filter(calculated=True).count() == 10, 60, "minutes")
    counts = dict(MinuteRollup.objects.values_list("start_time", "item_count"))
    assert counts == {at(60 * m): 15 for m in range(10)}
    logged = CalculationLog.objects.filter(frame_model="MinuteRollup")
    assert dict(logged.values_list("start_time").annotate(n=Count("id"))) == {
        at(60 * m): 1 for m in range(10)
    }
    assert pid not in set(logged.values_list("pid", flat=True))
