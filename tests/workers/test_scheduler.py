"""The scheduler process (periodiq), doubled: the second one is harmless."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from django.db.models import Count

from tests.conftest import REPO, Processes, wait_until, worker_env
from tests.streams import write_stream
from tests.testapp.models import CalculationLog, CountFrame

pytestmark = pytest.mark.workers


def start_scheduler(processes: Processes, log: Path) -> subprocess.Popen[bytes]:
    # periodiq sends its periodic actors once when it starts, then every minute.
    periodiq = Path(sys.executable).parent / "periodiq"
    command = [str(periodiq), "django_dramatiq.setup", "actors.tasks", "--path", str(REPO)]
    with open(log, "wb") as out:
        return processes.start(command, env=worker_env(), stdout=out, stderr=subprocess.STDOUT)


def test_two_scheduler_processes_tick_twice_and_every_frame_is_still_made_and_counted_once(
    workers, processes, tmp_path
):
    expected = write_stream(80)
    workers.start(processes=1, threads=4)

    logs = [tmp_path / f"periodiq-{i}.log" for i in range(2)]
    schedulers = [start_scheduler(processes, log) for log in logs]
    # periodiq ticks at start, or at the next minute when started after :55
    wait_until(
        lambda: all("Scheduling Actor(tick)" in log.read_text() for log in logs),
        70,
        "both schedulers to tick",
    )
    wait_until(lambda: CountFrame.objects.filter(calculated=True).count() == 80, 60, "frames")
    for proc in schedulers:  # no more ticks while counting
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)

    assert CountFrame.objects.count() == 80
    assert {f.start_time: f.item_count for f in CountFrame.objects.all()} == dict(expected)
    # (the "flaky" task reads the same stream; count CountFrame's calculations only)
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    per_frame = runs.values("start_time").annotate(n=Count("id"))
    assert {row["start_time"]: row["n"] for row in per_frame} == dict.fromkeys(expected, 1)
