"""Graceful restarts: SIGTERM mid-backlog, once or to the whole process group.

A platform stops a worker with SIGTERM and kills it 30 s later. Sent to the main
process only (systemd's KillMode=mixed, Kubernetes), Dramatiq forwards it once to
its worker processes; sent to the process group (honcho, Heroku), each worker
process gets it twice, and Dramatiq alone would kill it at the second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import psutil
import pytest

from actors import tasks
from tests.conftest import wait_until
from tests.streams import assert_every_frame_exactly_once, calculated, write_stream

pytestmark = pytest.mark.workers

#: Seconds a stopped worker may take to exit: Dramatiq's main loop (1 s), its
#: consumers (1 s), and the batch under way (20 frames x 50 ms here).
EXIT_BOUND = 6.0
FRAMES = 300


def to_the_main_process(worker: subprocess.Popen[bytes], logs: Callable[[], str]) -> None:
    """systemd (KillMode=mixed), Kubernetes: Dramatiq forwards it once."""
    os.kill(worker.pid, signal.SIGTERM)


def to_the_group_and_again_from_dramatiq(
    worker: subprocess.Popen[bytes], logs: Callable[[], str]
) -> None:
    """honcho, Heroku: the whole group gets it, then Dramatiq forwards one more. The two
    often arrive together and count as one; here the forwarded one comes once the worker
    process has begun stopping, as it does when the main process is a little late."""
    children = psutil.Process(worker.pid).children()
    os.killpg(worker.pid, signal.SIGTERM)
    wait_until(lambda: "Stopping worker process" in logs(), 10, "the worker to begin stopping")
    for child in children:
        os.kill(child.pid, signal.SIGTERM)


@pytest.mark.parametrize("send", [to_the_main_process, to_the_group_and_again_from_dramatiq])
def test_a_worker_stopped_mid_backlog_exits_0_promptly_and_loses_or_repeats_no_frame(
    workers, send
):
    # Given a backlog of 300 frames of 50 ms each, being calculated by a worker whose
    # messages may claim for 60 s (a time budget far longer than the exit bound)
    expected = write_stream(FRAMES)
    env = {"TEST_CALCULATE_SLEEP": "0.05", "STREAM_ANALYSIS_TIME_BUDGET": "60"}
    worker = workers.start(processes=1, threads=4, **env)
    tasks.coordinate.send("counts")
    wait_until(lambda: calculated() >= 20, 60, "20 calculated frames")

    # When it gets SIGTERM mid-backlog
    sent = time.monotonic()
    send(worker, workers.logs)
    code = worker.wait(timeout=30)
    took = time.monotonic() - sent
    print(f"SIGTERM {send.__name__}: exit status {code} after {took:.1f} s")

    # Then it exits 0 within the bound, having stopped claiming (frames are left)
    log = workers.logs()
    assert code == 0, log
    assert took < EXIT_BOUND, f"{took:.1f} s to exit"
    assert "Killing worker process" not in log
    assert calculated() < FRAMES, "the worker went on claiming until the backlog was done"

    # And a worker started afterwards calculates the rest: every frame exactly once
    workers.start(processes=1, threads=4)
    tasks.coordinate.send("counts")
    wait_until(lambda: calculated() == FRAMES, 90, f"{FRAMES} calculated frames")
    assert_every_frame_exactly_once(expected)
