"""The management commands: their effect in the database, their output, their errors.

Happy paths run in-process with ``call_command``. A user's mistake is checked
the way a user meets it, with ``python -m django`` in a child process: one line
on stderr, a non-zero exit, no traceback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from actors import queue, tasks
from stream_analysis import AnalysisTask, backfill, coordinator
from stream_analysis.management import base
from stream_analysis.management.base import (
    format_duration,
    format_table,
    format_time,
    parse_time,
)
from tests.commands import RECOMPUTE_ALL, backfilled, frames, items, run, starts
from tests.conftest import REPO, WITH_DEFAULT_SIGINT, Processes, at, worker_env
from tests.testapp.models import CountFrame, FlakyFrame, Item, MinuteFrame

pytestmark = pytest.mark.usefixtures("three_tasks")


def running(key: str) -> bool:
    return AnalysisTask.get(key).is_running


# -- stream_analysis start | stop | list | status --------------------------------------


@pytest.mark.django_db
def test_start_runs_a_task_that_does_not_autostart():
    out = run("stream_analysis", "start", "minutely")

    assert out == "Started minutely.\n"
    assert running("minutely") is True
    assert AnalysisTask.objects.get(key="minutely").running is True


@pytest.mark.django_db
def test_stop_pauses_an_autostarted_task():
    out = run("stream_analysis", "stop", "counts")

    assert out == "Stopped counts.\n"
    assert running("counts") is False
    assert AnalysisTask.objects.get(key="counts").running is False


@pytest.mark.django_db
def test_start_and_stop_leave_other_tasks_alone():
    run("stream_analysis", "stop", "counts")
    run("stream_analysis", "start", "minutely")

    assert [running(k) for k in ("counts", "flaky", "minutely")] == [False, True, True]


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["start", "stop"])
def test_start_or_stop_without_a_key_is_an_error_naming_the_usage(action):
    with pytest.raises(CommandError, match=f"stream_analysis {action} KEY"):
        run("stream_analysis", action)


@pytest.mark.django_db
def test_list_shows_every_task_with_its_state_and_name():
    run("stream_analysis", "stop", "counts")

    out = run("stream_analysis", "list")

    assert out.splitlines() == [
        "counts\tstopped\tItem counts",
        "flaky\trunning\tFlaky counts",
        "minutely\tstopped\tMinute counts",
    ]


@pytest.mark.django_db
def test_list_with_a_key_shows_that_task():
    assert run("stream_analysis", "list", "flaky").splitlines() == ["flaky\trunning\tFlaky counts"]


def table(out: str) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a status table, split on runs of spaces."""
    header, *rows = out.splitlines()
    return re.split(r"\s{2,}", header), [line.split() for line in rows]


@pytest.mark.django_db
def test_status_prints_a_table_of_counts_lag_timings_and_cutoff():
    # Given two calculated frames, three pending, one failed, and another task's frames
    items(1, 100)
    frames(CountFrame, 0, calculated=True, analysis_time=0.5, cleanup_time=0.25)
    frames(CountFrame, 15, calculated=True, analysis_time=1.5, cleanup_time=0.75)
    frames(CountFrame, 30, 45, 60)
    frames(CountFrame, 75, failed=True, attempts=3)
    frames(FlakyFrame, 0, 15, 30)

    out = run("stream_analysis", "status", "counts")

    header, rows = table(out)
    assert header == [
        "KEY", "STATE", "DURATION", "DONE", "PENDING", "FAILED", "NEWEST END (UTC)",
        "LAG (s)", "ANALYSIS (s)", "CLEANUP (s)", "CUTOFF (UTC)",
    ]  # fmt: skip
    # The newest calculated frame ends at 30, the stream at 100: 70 s behind
    assert rows == [
        ["counts", "running", "15s", "2", "3", "1", "2026-01-01", "00:00:30", "70.0",
         "1.000", "0.500", "2026-01-01", "00:00:30"],
    ]  # fmt: skip


@pytest.mark.django_db
def test_status_shows_dashes_where_nothing_is_known_yet():
    out = run("stream_analysis", "status", "minutely")

    assert table(out)[1] == [
        ["minutely", "stopped", "1m10s", "0", "0", "0", "-", "-", "-", "-", "-"]
    ]


@pytest.mark.django_db
def test_status_without_a_key_shows_every_task_in_aligned_columns():
    frames(MinuteFrame, 0, calculated=True)

    lines = run("stream_analysis", "status").splitlines()

    assert [line.split()[0] for line in lines] == ["KEY", "counts", "flaky", "minutely"]
    assert lines[3].split()[:6] == ["minutely", "stopped", "1m10s", "1", "0", "0"]
    # Numbers are right-aligned under their header
    done_end = lines[0].index("DONE") + len("DONE")
    assert all(line[done_end - 1] != " " for line in lines)


@pytest.mark.django_db
def test_status_json_is_a_list_of_every_task_matching_the_database():
    # Given frames in every state and a stream ahead of them
    items(1, 100)
    frames(CountFrame, 0, 15, calculated=True, analysis_time=0.5)
    frames(CountFrame, 30, 45)
    frames(CountFrame, 60, failed=True, attempts=3)
    frames(MinuteFrame, 0, calculated=True)

    data = json.loads(run("stream_analysis", "status", "--json"))

    assert [entry["key"] for entry in data] == ["counts", "flaky", "minutely"]
    for entry in data:
        frame_class = AnalysisTask.get(entry["key"]).get_frame_class()
        manager = frame_class.objects
        assert (entry["done"], entry["pending"], entry["failed"]) == (
            manager.filter(calculated=True).count(),
            manager.filter(calculated=False, failed=False).count(),
            manager.filter(failed=True).count(),
        )
        assert entry["duration"] == frame_class.DURATION.total_seconds()
        cutoff = frame_class.get_stream_memory_cutoff()
        assert entry["cutoff"] == (None if cutoff is None else cutoff.isoformat())
    counts = data[0]
    assert counts["running"] is True
    assert counts["newest_calculated_end"] == at(30).isoformat()
    assert counts["stream_latest"] == at(100).isoformat()
    assert counts["lag_seconds"] == 70.0
    assert counts["avg_analysis_time"] == 0.5


@pytest.mark.django_db
def test_status_json_with_a_key_is_a_list_of_that_task():
    data = json.loads(run("stream_analysis", "status", "flaky", "--json"))

    assert [entry["key"] for entry in data] == ["flaky"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--json"], "--json only applies to 'status'"),
        (["start", "counts", "--from", "2026-01-01"], "--from only applies to 'recompute'"),
    ],
)
def test_an_option_of_another_action_is_refused(argv, message):
    with pytest.raises(CommandError, match=message):
        run("stream_analysis", *argv)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "argv", [["stream_analysis", "list"], ["stream_analysis", "status"], ["backfill_analysis"]]
)
def test_commands_over_every_task_say_when_none_is_configured(settings, argv):
    settings.ANALYSIS_TIME_FRAME_TASKS = {}

    with pytest.raises(CommandError, match="No analysis task is configured"):
        run(*argv)


@pytest.mark.django_db
def test_an_unknown_action_is_refused():
    with pytest.raises(CommandError, match="invalid choice"):
        run("stream_analysis", "restart", "counts")


# -- clear_queue -----------------------------------------------------------------------


@pytest.mark.django_db
def test_clear_queue_deletes_the_pending_frames_of_one_task():
    frames(CountFrame, 0, calculated=True)
    frames(CountFrame, 15, failed=True, attempts=3)
    frames(CountFrame, 30, 45)
    frames(FlakyFrame, 30)

    out = run("clear_queue", "counts", "--force")

    assert out == "Cleared 0 queued messages and 2 pending frames.\n"
    assert starts(CountFrame) == [at(0), at(15)]
    assert FlakyFrame.objects.count() == 1


@pytest.mark.usefixtures("live_db")
def test_clear_queue_also_deletes_the_tasks_queued_messages():
    tasks.calculate.send("counts")
    tasks.calculate.send("flaky")

    out = run("clear_queue", "counts", "--force")

    assert out == "Cleared 1 queued messages and 0 pending frames.\n"
    assert queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, "flaky") == 1


@pytest.mark.django_db
def test_clear_queue_refuses_a_running_task_whose_frames_would_not_come_back():
    # Given a running task with five pending frames older than its newest calculated one
    items(*range(0, 120, 10))
    frames(CountFrame, *range(0, 75, 15))
    frames(CountFrame, 75, calculated=True)

    with pytest.raises(CommandError) as refused:
        run("clear_queue", "counts")

    assert str(refused.value) == (
        "counts is running: clear_queue would delete 5 pending frames, of which 5 frames from "
        "2026-01-01 00:00:00 to 2026-01-01 00:01:15 UTC would never be created again (ticks "
        "only create frames after the newest remaining one, 2026-01-01 00:01:15 UTC) and the "
        "next cleanup may delete their stream data. Stop it first ('stream_analysis stop "
        "counts'), or pass --force."
    )
    assert CountFrame.objects.count() == 6


@pytest.mark.django_db
def test_clear_queue_with_force_says_exactly_which_frames_will_not_come_back():
    items(*range(0, 120, 10))
    frames(CountFrame, *range(0, 75, 15))
    frames(CountFrame, 75, calculated=True)

    out = run("clear_queue", "counts", "--force")

    assert out.splitlines() == [
        "Cleared 0 queued messages and 5 pending frames.",
        "Of those, 5 frames from 2026-01-01 00:00:00 to 2026-01-01 00:01:15 UTC will never be "
        "created again (ticks only create frames after the newest remaining one, 2026-01-01 "
        "00:01:15 UTC) and the next cleanup may delete their stream data. 'backfill_analysis "
        "counts' recreates them while their stream data lasts.",
    ]
    # And that is so: the next tick creates none of them
    coordinator.tick(AnalysisTask.require("counts"))
    assert starts(CountFrame) == [at(75), at(90)]


@pytest.mark.django_db
def test_clear_queue_of_a_stopped_task_needs_no_force_and_still_says_what_is_lost():
    run("stream_analysis", "stop", "counts")
    frames(CountFrame, 0)
    frames(CountFrame, 15, calculated=True)

    out = run("clear_queue", "counts")

    assert out.splitlines()[1].startswith("Of those, 1 frames from 2026-01-01 00:00:00 to")


# -- cleanup_streams -------------------------------------------------------------------


@pytest.mark.django_db
def test_cleanup_streams_deletes_analysed_items_and_says_how_many():
    # Given every task is done with the data before 30
    items(0, 10, 29, 30, 31, 100)
    frames(CountFrame, 0, 15, calculated=True)
    frames(CountFrame, 30)
    frames(FlakyFrame, 30, calculated=True)
    frames(MinuteFrame, 70)

    out = run("cleanup_streams")

    assert out == "Deleted 3 stream items.\n"
    assert Item.objects.count() == 3


@pytest.mark.django_db
def test_cleanup_streams_keeps_everything_while_a_task_has_no_frames():
    items(0, 10, 100)
    frames(CountFrame, 0, 15, calculated=True)

    assert run("cleanup_streams") == "Deleted 0 stream items.\n"
    assert Item.objects.count() == 3


# -- backfill_analysis -----------------------------------------------------------------


@pytest.mark.django_db
def test_backfill_creates_every_missing_frame_over_the_whole_stream():
    # Given a stream with a gap (nothing between 40 and 100) and one frame already done
    items(1, 40, 100)
    frames(CountFrame, 15, calculated=True)

    out = backfilled("counts")

    # Then every closed 15 s frame exists, the gap's included; the done one is kept
    assert out == "counts: created 5 frames, reset 0.\n"
    assert starts(CountFrame) == [at(s) for s in (0, 15, 30, 45, 60, 75)]
    assert starts(CountFrame, calculated=True) == [at(15)]
    assert FlakyFrame.objects.count() == 0


@pytest.mark.django_db
def test_backfill_twice_creates_nothing_the_second_time():
    items(1, 100)
    backfilled("counts")

    assert backfilled("counts") == "counts: created 0 frames, reset 0.\n"


@pytest.mark.django_db
def test_backfill_with_force_queues_done_and_failed_frames_again():
    items(1, 50)
    frames(CountFrame, 0, calculated=True, analysis_time=1.0)
    frames(CountFrame, 15, failed=True, attempts=3, last_error="Traceback ...")

    out = backfilled("counts", "--force")

    assert out == "counts: created 1 frames, reset 2.\n"
    frame = CountFrame.objects.get(start_time=at(15))
    assert (frame.calculated, frame.failed, frame.attempts, frame.last_error) == (
        False,
        False,
        0,
        "",
    )
    assert [f.status for f in CountFrame.objects.order_by("start_time")] == ["pending"] * 3


@pytest.mark.django_db
def test_backfill_without_a_key_fills_every_task():
    items(1, 100)

    out = backfilled()

    assert out.splitlines() == [
        "counts: created 6 frames, reset 0.",
        "flaky: created 6 frames, reset 0.",
        "minutely: created 1 frames, reset 0.",
    ]
    assert starts(MinuteFrame) == [at(0)]


@pytest.mark.django_db
def test_backfill_of_an_empty_stream_creates_nothing():
    assert backfilled("minutely") == "minutely: created 0 frames, reset 0.\n"


@pytest.mark.django_db
def test_backfill_with_no_wait_returns_right_after_creating():
    items(1, 100)

    out = backfilled("counts", "--no-wait")

    assert out == "counts: created 6 frames, reset 0.\n"
    assert CountFrame.objects.filter(calculated=False).count() == 6


@pytest.mark.django_db
def test_backfill_creates_frames_in_chunks_and_says_how_many_overall(monkeypatch):
    monkeypatch.setattr(backfill, "BACKFILL_CHUNK", 4)
    items(1, 100)
    frames(CountFrame, 15, calculated=True)

    out = backfilled("counts", "--force")

    assert out == "counts: created 5 frames, reset 1.\n"
    assert starts(CountFrame) == [at(s) for s in (0, 15, 30, 45, 60, 75)]
    assert starts(CountFrame, calculated=True) == []


@pytest.mark.django_db
def test_ctrl_c_while_creating_frames_rolls_back_every_task(monkeypatch):
    # Given a backfill of every task, interrupted at its third statement (the second task)
    monkeypatch.setattr(backfill, "BACKFILL_CHUNK", 4)
    items(1, 100)
    frames(CountFrame, 15, calculated=True)
    real_insert, calls = coordinator.insert_frames, []

    def insert_then_interrupt(*args):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_insert(*args)

    monkeypatch.setattr(coordinator, "insert_frames", insert_then_interrupt)
    err = StringIO()

    with pytest.raises(SystemExit) as exited:
        call_command("backfill_analysis", "--force", stdout=StringIO(), stderr=err)

    # Then it exits 130 with one line, and nothing of the backfill is left
    assert exited.value.code == 130
    assert err.getvalue() == (
        "Interrupted: the backfill was rolled back, no frame was created or reset.\n"
    )
    assert starts(CountFrame) == [at(15)]
    assert starts(CountFrame, calculated=True) == [at(15)]
    assert FlakyFrame.objects.count() == 0


@pytest.mark.usefixtures("live_db")
def test_backfill_with_wait_does_not_wait_for_a_stopped_task():
    items(1, 100)
    run("stream_analysis", "stop", "counts")

    out = backfilled("counts", "--wait")

    assert out.splitlines() == [
        "counts: created 6 frames, reset 0.",
        "counts is stopped: its frames wait for 'stream_analysis start counts'.",
    ]


@pytest.mark.usefixtures("live_db")
def test_ctrl_c_while_waiting_stops_watching_with_exit_130_and_keeps_the_frames(processes):
    # Given a backfill that waits, and no worker to calculate its frames
    items(1, 100)
    proc = processes.start(
        [*WITH_DEFAULT_SIGINT, sys.executable, "-m", "django", "backfill_analysis", "counts",
         "--wait"],
        env=worker_env(PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(3)]  # the plan, the result, the wait
    assert seen[2].startswith("Waiting for 6 frames"), seen

    # When the user presses Ctrl-C
    os.kill(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    # Then it says so in one line and exits 130, without a traceback
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.splitlines() == [
        "Stopped watching: the frames stay queued and the workers go on."
    ]
    # And the frames are all there, pending, with a coordinator tick queued for them
    assert starts(CountFrame, calculated=False) == [at(s) for s in range(0, 90, 15)]
    assert queue.count_queued(tasks.QUEUE, tasks.coordinate.actor_name, "counts") == 1


@pytest.mark.django_db
def test_backfill_prints_its_plan_before_it_starts():
    items(1, 100)

    out = run("backfill_analysis", "--force")

    assert out.splitlines()[:3] == [
        "counts: plan: 6 frames of 15s from 2026-01-01 00:00:00 to 2026-01-01 00:01:30 UTC "
        "(calculated and failed ones are recalculated).",
        "flaky: plan: 6 frames of 15s from 2026-01-01 00:00:00 to 2026-01-01 00:01:30 UTC "
        "(calculated and failed ones are recalculated).",
        "minutely: plan: 1 frames of 1m10s from 2026-01-01 00:00:00 to 2026-01-01 00:01:10 "
        "UTC (calculated and failed ones are recalculated).",
    ]


@pytest.mark.django_db
def test_backfill_does_not_follow_an_item_dated_2100():
    items(1, 100)
    Item.objects.create(created_at=at(0).replace(year=2100))

    out = run("backfill_analysis", "counts")

    assert out.splitlines()[0].startswith("counts: plan: 6 frames of 15s from 2026-01-01")
    assert starts(CountFrame)[-1] == at(75)


@pytest.mark.django_db
def test_backfill_above_the_threshold_without_a_terminal_refuses_and_creates_nothing(monkeypatch):
    monkeypatch.setattr(base, "CONFIRM_ABOVE", 5)
    items(1, 100)

    with pytest.raises(CommandError) as refused:
        run("backfill_analysis", "counts")

    assert str(refused.value) == (
        "backfill_analysis would cover 6 frames (more than 5) and nobody is at a terminal to "
        "confirm: pass --yes."
    )
    assert CountFrame.objects.count() == 0
    assert backfilled("counts", "--yes") == "counts: created 6 frames, reset 0.\n"


def backfill_in_a_child(stdin: object) -> subprocess.Popen[str]:
    """``backfill_analysis counts --no-wait`` in a child process reading ``stdin``."""
    return subprocess.Popen(
        [sys.executable, "-m", "django", "backfill_analysis", "counts", "--no-wait"],
        cwd=REPO,
        env=worker_env(PYTHONUNBUFFERED="1"),
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


BIG_STREAM = (0, 15 * (base.CONFIRM_ABOVE + 1))  # one frame more than the threshold


@pytest.mark.usefixtures("live_db")
def test_backfill_above_the_threshold_in_a_script_prints_its_plan_and_one_line():
    items(*BIG_STREAM)

    proc = backfill_in_a_child(subprocess.DEVNULL)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode != 0
    assert stdout.startswith("counts: plan: 10001 frames of 15s from 2026-01-01 00:00:00 to ")
    assert [line for line in stderr.splitlines() if line.strip()] == [
        "CommandError: backfill_analysis would cover 10001 frames (more than 10000) and nobody "
        "is at a terminal to confirm: pass --yes."
    ]
    assert CountFrame.objects.count() == 0


@pytest.mark.usefixtures("live_db")
@pytest.mark.parametrize(("answer", "created"), [("y", 10001), ("n", 0)])
def test_backfill_above_the_threshold_on_a_terminal_asks_first(answer, created):
    import pty

    items(*BIG_STREAM)
    terminal, child_end = pty.openpty()
    try:
        proc = backfill_in_a_child(child_end)
        os.close(child_end)
        assert proc.stdout is not None
        asked = ""  # read from the pipe itself: communicate() skips a wrapper's buffer
        while "[y/N] " not in asked and proc.poll() is None:
            asked += os.read(proc.stdout.fileno(), 4096).decode()
        os.write(terminal, f"{answer}\n".encode())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(terminal)

    assert asked.startswith("counts: plan: 10001 frames of 15s from 2026-01-01 00:00:00 to ")
    assert asked.endswith("\nBackfill 10001 frames? [y/N] ")
    assert "Traceback" not in stderr
    assert CountFrame.objects.count() == created
    if created:
        assert stdout == "counts: created 10001 frames, reset 0.\n"
    else:
        assert stderr.strip() == "CommandError: Cancelled: nothing changed."


def test_the_ctrl_c_test_interrupts_its_child_even_when_the_test_run_ignores_sigint(
    processes,
):
    # Given a test run that ignores SIGINT, as one started by "pytest &" in a script
    ignoring = (
        "import signal, subprocess, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    )
    reports = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"

    def child_handles_sigint(*prefix: str) -> str:
        command = [sys.executable, "-c", ignoring, *prefix, sys.executable, "-c", reports]
        return processes.run(command).stdout

    # Then a plain child inherits SIG_IGN and Python raises no KeyboardInterrupt in it
    # (the Ctrl-C test then waited 60 s and failed), while WITH_DEFAULT_SIGINT restores it
    assert child_handles_sigint() == "False\n"
    assert child_handles_sigint(*WITH_DEFAULT_SIGINT) == "True\n"


# -- stream_analysis recompute ---------------------------------------------------------


@pytest.mark.django_db
def test_recompute_puts_every_frame_overlapping_the_range_back_to_pending():
    # Given calculated frames 0..75 whose data is stored, one failed, and the range [20, 50)
    items(0)
    frames(CountFrame, 0, 15, 30, 60, 75, calculated=True, calculated_at=at(200))
    frames(CountFrame, 45, failed=True, attempts=3, last_error="Traceback ...")

    out = run(
        "stream_analysis", "recompute", "counts",
        "--from", "2026-01-01T00:00:20Z", "--to", "2026-01-01T01:00:50+01:00",
    )  # fmt: skip

    assert out == (
        "counts: 3 frames overlapping [2026-01-01 00:00:20, 2026-01-01 00:00:50) UTC "
        "back to pending.\n"
    )
    assert starts(CountFrame, calculated=False, failed=False, attempts=0) == [
        at(15), at(30), at(45)
    ]  # fmt: skip
    assert starts(CountFrame, calculated=True) == [at(0), at(60), at(75)]


@pytest.mark.django_db
def test_recompute_takes_a_time_without_offset_as_utc():
    items(0)
    frames(CountFrame, 0, 15, calculated=True)

    out = run("stream_analysis", "recompute", "counts", "--from", "2026-01-01T00:00:15",
              "--to", "2026-01-01T00:00:30")  # fmt: skip

    assert out.startswith("counts: 1 frames overlapping")
    assert starts(CountFrame, calculated=True) == [at(0)]


@pytest.mark.django_db
def test_recompute_of_a_stopped_task_says_its_frames_wait():
    items(0)
    frames(MinuteFrame, 0, calculated=True)

    out = run("stream_analysis", "recompute", "minutely", "--from", "2026-01-01",
              "--to", "2026-01-02")  # fmt: skip

    assert out.splitlines()[1] == (
        "minutely is stopped: they wait for 'stream_analysis start minutely'."
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["counts", "--from", "2026-01-01"], "'recompute' needs --from and --to"),
        (["--from", "2026-01-01", "--to", "2026-01-02"], "'recompute' needs a task key"),
        (["counts", "--from", "2026-01-02", "--to", "2026-01-01"], "must be before --to"),
    ],
)
def test_recompute_without_a_proper_range_is_refused(argv, message):
    with pytest.raises(CommandError, match=message):
        run("stream_analysis", "recompute", *argv)


@pytest.mark.django_db
def test_recompute_dry_run_says_what_would_change_and_changes_nothing():
    items(20)
    frames(CountFrame, 0, 15, 30, calculated=True)
    frames(CountFrame, 45)

    out = run(*RECOMPUTE_ALL, "--dry-run")

    assert out.splitlines() == [
        "counts: recompute would put 4 frames overlapping [2026-01-01 00:00:00, 2026-01-02 "
        "00:00:00) UTC back to pending (3 of them calculated: their results are replaced; "
        "1 start before 2026-01-01 00:00:15 UTC and may have lost their stream data).",
        "Dry run: nothing changed.",
    ]
    assert starts(CountFrame, calculated=True) == [at(0), at(15), at(30)]


@pytest.mark.django_db
def test_recompute_above_the_threshold_without_a_terminal_needs_yes(monkeypatch):
    monkeypatch.setattr(base, "CONFIRM_ABOVE", 3)
    items(0)
    frames(CountFrame, 0, 15, 30, 45, calculated=True)

    with pytest.raises(CommandError) as refused:
        run(*RECOMPUTE_ALL)

    assert str(refused.value) == (
        "counts: recompute would reset 4 frames (more than 3) and nobody is at a terminal to "
        "confirm: pass --yes, or narrow --from/--to (--dry-run shows what would change)."
    )
    assert CountFrame.objects.filter(calculated=True).count() == 4
    assert run(*RECOMPUTE_ALL, "--yes").startswith("counts: 4 frames overlapping")
    assert CountFrame.objects.filter(calculated=True).count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("answer", "left_calculated"), [("y\n", 0), ("n\n", 4), ("\n", 4)])
def test_recompute_above_the_threshold_asks_on_a_terminal(monkeypatch, answer, left_calculated):
    monkeypatch.setattr(base, "CONFIRM_ABOVE", 3)
    monkeypatch.setattr(sys, "stdin", TerminalInput(answer))
    items(0)
    frames(CountFrame, 0, 15, 30, 45, calculated=True)

    try:
        run(*RECOMPUTE_ALL)
    except CommandError as cancelled:
        assert str(cancelled) == "Cancelled: nothing changed."

    assert CountFrame.objects.filter(calculated=True).count() == left_calculated


class TerminalInput(StringIO):
    """Standard input that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end", "option"),
    [("0001-01-01", "9999-12-31", "--from"), ("2026-01-01", "9999-12-31", "--to"),
     ("2026-01-01", "9999-12-31T23:59:59-05:00", "--to")],
)  # fmt: skip
def test_recompute_with_a_date_near_the_ends_of_the_calendar_changes_nothing(start, end, option):
    items(0)
    frames(CountFrame, 0, 15, calculated=True)

    with pytest.raises(CommandError, match=f"^{option} '.*' is out of range: give a time from "):
        run("stream_analysis", "recompute", "counts", "--from", start, "--to", end)

    assert starts(CountFrame, calculated=True) == [at(0), at(15)]


# -- cleanup_streams --dry-run ---------------------------------------------------------


@pytest.mark.django_db
def test_cleanup_dry_run_prints_each_streams_cutoff_and_count_and_deletes_nothing():
    # Given every task is done with the data before 30
    items(0, 10, 29, 30, 31, 100)
    frames(CountFrame, 0, 15, calculated=True)
    frames(CountFrame, 30)
    frames(FlakyFrame, 30, calculated=True)
    frames(MinuteFrame, 70)

    out = run("cleanup_streams", "--dry-run")

    assert out.splitlines() == [
        "ItemStream: cutoff 2026-01-01 00:00:30 UTC, 3 items would go.",
        "Dry run: nothing deleted; 3 stream items would go.",
    ]
    assert Item.objects.count() == 6


@pytest.mark.django_db
def test_cleanup_dry_run_says_when_a_stream_is_kept_whole():
    items(0, 10, 100)
    frames(CountFrame, 0, 15, calculated=True)

    assert run("cleanup_streams", "--dry-run").splitlines() == [
        "ItemStream: no cutoff (a task still needs every item), 0 items would go.",
        "Dry run: nothing deleted; 0 stream items would go.",
    ]


# -- how the commands write times, durations and tables --------------------------------


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (timedelta(milliseconds=20), "20ms"),
        (timedelta(seconds=15), "15s"),
        (timedelta(seconds=70), "1m10s"),
        (timedelta(hours=1), "1h"),
        (timedelta(days=1, hours=12), "1d12h"),
        (timedelta(seconds=1.5), "1.5s"),
    ],
)
def test_durations_are_written_compactly(duration, text):
    assert format_duration(duration) == text


def test_times_are_written_in_utc_to_the_second_or_millisecond():
    plus_one = datetime(2026, 1, 1, 1, 0, 30, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    assert format_time(plus_one) == "2026-01-01 01:00:30"
    assert format_time(at(0.02)) == "2026-01-01 00:00:00.020"
    assert format_time(None) == "-"


def test_a_table_pads_columns_and_right_aligns_numbers():
    lines = format_table(("KEY", "N", "LAG"), [("a", "1", "-"), ("long_key", "123", "4.5")])

    assert lines == [
        "KEY         N  LAG",
        "a           1    -",
        "long_key  123  4.5",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01", at(0)),
        ("2026-01-01T00:00:15Z", at(15)),
        ("2026-01-01T01:00:30+01:00", at(30)),
        ("2026-01-01 00:01", at(60)),
    ],
)
def test_times_given_on_the_command_line_are_iso_8601_and_utc_without_offset(text, expected):
    assert parse_time("--from", text) == expected


# -- help ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("stream_analysis", "Start, stop, list, show the status of, or recompute"),
        ("clear_queue", "Delete a task's pending frames"),
        ("clear_queue", "is never created again"),
        ("clear_queue", "Refuses on a running task unless --force"),
        ("cleanup_streams", "Delete stream data that every task"),
        ("backfill_analysis", "Create every missing frame"),
        ("backfill_analysis", "It first prints its plan (frames and range per task)"),
    ],
)
def test_help_of_each_command_exits_zero_and_explains_it(capsys, command, text):
    with pytest.raises(SystemExit) as exited:
        call_command(command, "--help")

    assert exited.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"usage: {command}" in help_text
    assert text in help_text


# -- a user's mistake, as the user meets it ------------------------------------------------

BAD_INPUT = {
    "start": ["stream_analysis", "start", "nope"],
    "status": ["stream_analysis", "status", "nope"],
    "recompute": [
        "stream_analysis",
        "recompute",
        "nope",
        "--from",
        "2026-01-01",
        "--to",
        "2026-01-02",
    ],
    "clear_queue": ["clear_queue", "nope"],
    "backfill_analysis": ["backfill_analysis", "nope", "--force"],
}
NO_KEY = ["start", "stop"]
BAD_DATES = {
    "--from": ["--from", "yesterday", "--to", "2026-01-02T00:00:00Z"],
    "--to": ["--from", "2026-01-01T00:00:00Z", "--to", "2026-13-01"],
}
FAR_DATES = ["--from", "0001-01-01", "--to", "9999-12-31"]


@pytest.fixture(scope="module")
def valid_keys(django_db_setup) -> str:
    """The keys a child process knows: every task of tests/settings.py, as the error lists them."""
    from django.conf import settings

    return ", ".join(sorted(settings.ANALYSIS_TIME_FRAME_TASKS))


@pytest.fixture(scope="module")
def cli(django_db_setup) -> dict[str, subprocess.CompletedProcess[str]]:
    """Each bad command line of this module, run at once as ``python -m django ...``."""
    argvs = dict(BAD_INPUT)
    argvs.update({f"{action} without key": ["stream_analysis", action] for action in NO_KEY})
    argvs.update(
        {f"bad {option}": ["stream_analysis", "recompute", "counts", *argv]
         for option, argv in BAD_DATES.items()}
    )  # fmt: skip
    argvs["far dates"] = ["stream_analysis", "recompute", "counts", *FAR_DATES]
    env = worker_env()
    with Processes() as processes:
        procs = {
            name: processes.start(
                [sys.executable, "-m", "django", *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name, argv in argvs.items()
        }
        results = {}
        for name, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=60)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    return results


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_an_unknown_key_prints_one_line_naming_the_valid_keys(cli, valid_keys, case):
    result = cli[case]

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert "'nope'" in line
    assert f"Valid keys: {valid_keys}." in line


@pytest.mark.parametrize("action", NO_KEY)
def test_start_or_stop_without_a_key_prints_one_line_and_fails(cli, action):
    result = cli[f"{action} without key"]

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        f"CommandError: '{action}' needs a task key: stream_analysis {action} KEY."
    ]


@pytest.mark.usefixtures("live_db")
def test_start_from_the_command_line_starts_the_task_and_ticks_it_at_once(processes):
    result = processes.run(
        [sys.executable, "-m", "django", "stream_analysis", "start", "minutely"], env=worker_env()
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "Started minutely.\n", "")
    assert running("minutely") is True
    assert queue.count_queued(tasks.QUEUE, tasks.coordinate.actor_name, "minutely") == 1


@pytest.mark.parametrize("option", sorted(BAD_DATES))
def test_recompute_with_a_bad_date_prints_one_line_naming_the_format(cli, option):
    result = cli[f"bad {option}"]

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert line.startswith(f"CommandError: {option} ")
    assert "is not an ISO 8601 time: write e.g. 2026-01-01T10:00:00Z" in line


def test_recompute_with_dates_at_the_ends_of_the_calendar_prints_one_line(cli):
    result = cli["far dates"]

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert error_lines(result) == [
        "CommandError: --from '0001-01-01' is out of range: give a time from 1000-01-01 to "
        "before 9000-01-01 (UTC)."
    ]
