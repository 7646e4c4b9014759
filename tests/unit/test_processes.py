"""The ``processes`` fixture: no child process outlives the test that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from tests.conftest import Processes, poll

#: A child that starts a grandchild (in its process group), says so, and sleeps.
PARENT = (
    "import subprocess, sys, time; "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "print('started', flush=True); time.sleep(120)"
)


def group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_a_process_left_running_is_killed_with_its_whole_group_and_its_pipes_closed():
    # Given a test that started a process, which started one of its own, and then failed
    with Processes() as processes:
        proc = processes.start(
            [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline() == "started\n"

    # Then both are killed (the grandchild too: it was in the group) and nothing is left open
    assert proc.returncode == -signal.SIGKILL
    assert poll(lambda: group_is_gone(proc.pid), 10, "the process group to go")
    assert proc.stdout.closed
    assert proc.stderr is not None and proc.stderr.closed


def test_run_returns_the_exit_status_and_the_output_as_text():
    with Processes() as processes:
        code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
        result = processes.run([sys.executable, "-c", code])

    assert (result.returncode, result.stdout, result.stderr) == (3, "out\n", "err\n")
