"""The management commands: their effect in the database, their output, their errors.

Happy paths run in-process with ``call_command``. A user's mistake is checked
the way a user meets it, with ``python -m django`` in a child process: one line
on stderr, a non-zero exit, no traceback.
"""

from __future__ import annotations

import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from actors import queue, tasks
from stream_analysis import AnalysisTask
from tests.conftest import REPO, at, worker_env
from tests.testapp.models import CountFrame, FlakyFrame, Item, MinuteFrame

THREE_TASKS = ("counts", "flaky", "minutely")


@pytest.fixture(autouse=True)
def three_tasks(settings):
    """Only the tasks these tests count on, whatever else tests/settings.py configures."""
    configured = settings.ANALYSIS_TIME_FRAME_TASKS
    settings.ANALYSIS_TIME_FRAME_TASKS = {key: configured[key] for key in THREE_TASKS}


def run(*args: str) -> str:
    """``manage.py <args>`` in this process; returns what it wrote to stdout."""
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def frames(model, *starts: float, **fields) -> None:
    model.objects.bulk_create(model(start_time=at(s), **fields) for s in starts)


def items(*seconds: float) -> None:
    Item.objects.bulk_create(Item(created_at=at(s)) for s in seconds)


def starts(model, **filters) -> list:
    query = model.objects.filter(**filters).order_by("start_time")
    return list(query.values_list("start_time", flat=True))


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


@pytest.mark.django_db
def test_status_counts_the_frames_of_a_task_by_state():
    frames(CountFrame, 0, 15, calculated=True)
    frames(CountFrame, 30, 45, 60)
    frames(CountFrame, 75, failed=True, attempts=3)
    frames(FlakyFrame, 0, 15, 30)  # another task's frames

    out = run("stream_analysis", "status", "counts")

    assert out.splitlines() == [
        "counts\trunning\tItem counts\tduration=0:00:15\tdone=2\tpending=3\tfailed=1"
    ]


@pytest.mark.django_db
def test_status_without_a_key_shows_every_task():
    frames(MinuteFrame, 0, calculated=True)

    lines = run("stream_analysis", "status").splitlines()

    assert [line.split("\t")[0] for line in lines] == ["counts", "flaky", "minutely"]
    assert lines[2].endswith("duration=0:01:10\tdone=1\tpending=0\tfailed=0")


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

    out = run("clear_queue", "counts")

    assert out == "Cleared 0 queued messages and 2 pending frames.\n"
    assert starts(CountFrame) == [at(0), at(15)]
    assert FlakyFrame.objects.count() == 1


@pytest.mark.usefixtures("live_db")
def test_clear_queue_also_deletes_the_tasks_queued_messages():
    tasks.calculate.send("counts")
    tasks.calculate.send("flaky")

    out = run("clear_queue", "counts")

    assert out == "Cleared 1 queued messages and 0 pending frames.\n"
    assert queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, "flaky") == 1


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

    out = run("backfill_analysis", "counts")

    # Then every closed 15 s frame exists, the gap's included; the done one is kept
    assert out == "counts: created 5 frames, reset 0.\n"
    assert starts(CountFrame) == [at(s) for s in (0, 15, 30, 45, 60, 75)]
    assert starts(CountFrame, calculated=True) == [at(15)]
    assert FlakyFrame.objects.count() == 0


@pytest.mark.django_db
def test_backfill_twice_creates_nothing_the_second_time():
    items(1, 100)
    run("backfill_analysis", "counts")

    assert run("backfill_analysis", "counts") == "counts: created 0 frames, reset 0.\n"


@pytest.mark.django_db
def test_backfill_with_force_queues_done_and_failed_frames_again():
    items(1, 50)
    frames(CountFrame, 0, calculated=True, analysis_time=1.0)
    frames(CountFrame, 15, failed=True, attempts=3, last_error="Traceback ...")

    out = run("backfill_analysis", "counts", "--force")

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

    out = run("backfill_analysis")

    assert out.splitlines() == [
        "counts: created 6 frames, reset 0.",
        "flaky: created 6 frames, reset 0.",
        "minutely: created 1 frames, reset 0.",
    ]
    assert starts(MinuteFrame) == [at(0)]


@pytest.mark.django_db
def test_backfill_of_an_empty_stream_creates_nothing():
    assert run("backfill_analysis", "minutely") == "minutely: created 0 frames, reset 0.\n"


# -- help ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "text"),
    [
        ("stream_analysis", "Start, stop, list or show the status"),
        ("clear_queue", "Delete a task's pending frames"),
        ("cleanup_streams", "Delete stream data that every task"),
        ("backfill_analysis", "Create every missing frame"),
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
    "clear_queue": ["clear_queue", "nope"],
    "backfill_analysis": ["backfill_analysis", "nope", "--force"],
}
NO_KEY = ["start", "stop"]


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
    env = worker_env()
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-m", "django", *argv],
            cwd=REPO,
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
def test_start_from_the_command_line_starts_the_task_and_ticks_it_at_once():
    result = subprocess.run(
        [sys.executable, "-m", "django", "stream_analysis", "start", "minutely"],
        cwd=REPO,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert (result.returncode, result.stdout, result.stderr) == (0, "Started minutely.\n", "")
    assert running("minutely") is True
    assert queue.count_queued(tasks.QUEUE, tasks.coordinate.actor_name, "minutely") == 1
