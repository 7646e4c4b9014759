"""Moving over from the original: a client's analysis code runs unchanged.

Each row of docs/moving-from-the-original.md names the test that proves it: here, or
in tests/workers/test_moving_from_the_original.py, which runs the client's analyses on
a real worker and scheduler.
The client is tests/legacy_client/, written as the original's users wrote theirs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

import stream_analysis
from actors import signals as runtime_signals
from stream_analysis import AnalysisTask, calculation, signals
from tests.conftest import REPO, at
from tests.legacy_client import status
from tests.legacy_client.models import (
    DemoTimeFrame,
    FeelingPercent,
    FeelingWord,
    MapTimeFrame,
    QuietTimeFrame,
    TimeFrame,
    TweetChunk,
)
from tests.legacy_client.stream import Tweet
from tests.legacy_client.twitter_analysis import QuietTweetStream, TweetStream
from tests.legacy_tweets import write_tweets

# -- AnalysisTask ------------------------------------------------------------------------


@pytest.mark.django_db
def test_analysis_task_get_answers_as_the_original(legacy_tasks):
    tasks = AnalysisTask.get()

    assert [t.key for t in tasks] == ["demo", "map", "thermometer"]
    assert AnalysisTask.get(key="nope") is None
    demo = AnalysisTask.get(key="demo")
    assert (demo.key, demo.name, demo.autostart) == ("demo", "Demo Analysis", False)
    assert demo.frame_class_path == "tests.legacy_client.models.DemoTimeFrame"
    assert demo.get_frame_class() is DemoTimeFrame


@pytest.mark.django_db
def test_schedule_takes_the_originals_arguments_and_start_now_ticks_at_once(legacy_tasks, ticks):
    task = AnalysisTask.get(key="demo")

    assert task.schedule(cancel_first=True) is True
    assert task.schedule(True, True) is True  # positional, as the original allowed

    assert AnalysisTask.get(key="demo").is_running is True
    assert ticks == ["demo", "demo"]
    assert AnalysisTask.objects.filter(key="demo").count() == 1  # never scheduled twice


@pytest.mark.django_db
def test_schedule_without_start_now_leaves_the_first_tick_to_the_scheduler(legacy_tasks, ticks):
    task = AnalysisTask.get(key="map")

    task.schedule(cancel_first=False, start_now=False)

    assert AnalysisTask.get(key="map").is_running is True
    assert ticks == []


@pytest.mark.django_db
def test_cancel_stops_a_task_and_says_whether_it_was_running(legacy_tasks):
    status.schedule_task("demo")

    assert AnalysisTask.get(key="demo").cancel() is True
    assert AnalysisTask.get(key="demo").cancel() is False
    assert AnalysisTask.get(key="demo").is_running is False


@pytest.mark.django_db
def test_get_rq_job_is_deprecated_and_answers_whether_the_task_runs(legacy_tasks):
    with pytest.warns(DeprecationWarning, match=r"get_rq_job\(\) is deprecated.*is_running"):
        assert AnalysisTask.get(key="thermometer").get_rq_job() is True  # autostart
    with pytest.warns(DeprecationWarning):
        assert AnalysisTask.get(key="demo").get_rq_job() is None


@pytest.mark.django_db
def test_clear_queue_returns_the_messages_and_frames_it_deleted(legacy_tasks):
    DemoTimeFrame.objects.create(start_time=at(0), calculated=True)
    DemoTimeFrame.objects.create(start_time=at(15))

    messages, frames = AnalysisTask.get(key="demo").clear_queue()

    assert (messages, frames) == (0, 1)
    assert list(DemoTimeFrame.objects.values_list("start_time", flat=True)) == [at(0)]


# -- frames and the TimedIntervalMixin --------------------------------------------------


def make_thermometer_frames() -> FeelingWord:
    happy = FeelingWord.objects.create(word="happy")
    for minute, done in ((0, True), (1, True), (2, False)):
        frame = TimeFrame.objects.create(start_time=at(minute * 60), calculated=done)
        FeelingPercent.objects.create(
            frame=frame,
            feeling=happy,
            percent=0.5,
            start_time=frame.start_time,
            missing_data=False,
        )
    return happy


@pytest.mark.django_db
def test_a_timed_interval_model_without_calculated_answers_the_originals_queries():
    happy = make_thermometer_frames()
    percent = FeelingPercent.get_earliest()

    assert FeelingPercent.DURATION.total_seconds() == 60
    assert (percent.duration, percent.duration_seconds) == (timedelta(minutes=1), 60.0)
    assert percent.end_time == at(60)
    assert FeelingPercent.get_latest().start_time == at(120)
    assert FeelingPercent.get_earliest_start_time() == at(0)
    assert FeelingPercent.get_latest_end_time() == at(180)
    # get_in_range overridden, calling super() with positional arguments
    in_range = FeelingPercent.get_in_range(at(30), at(90))
    assert sorted(p.start_time for p in in_range) == [at(0), at(60)]
    in_range = FeelingPercent.get_in_range(start=at(60), end=None, feeling_ids=[happy.pk])
    assert sorted(p.start_time for p in in_range) == [at(60), at(120)]
    assert FeelingPercent.get_average_percents() == {happy.pk: 0.5}


@pytest.mark.django_db
def test_frames_answer_the_originals_class_methods():
    make_thermometer_frames()
    TimeFrame.objects.filter(calculated=True).update(analysis_time=2.0, cleanup_time=1.0)

    assert TimeFrame.count_completed() == 2
    assert TimeFrame.get_in_range(calculated=True).count() == 2
    assert [f.start_time for f in TimeFrame.get_frames_in_interval(at(60))] == [at(60), at(120)]
    assert TimeFrame.get_performance_stats(at(0), at(120)) == {
        "analysis_time": 2.0,
        "cleanup_time": 1.0,
    }
    assert TimeFrame.get_average_analysis_time() == 2.0
    assert TimeFrame.get_latest().start_time == at(120)
    assert [f.start_time for f in DemoTimeFrame.get_most_recent()] == []


@pytest.mark.django_db
def test_get_stream_memory_cutoff_can_call_super_and_get_stream_cutoff_times_combines_them(
    legacy_tasks,
):
    MapTimeFrame.objects.create(start_time=at(0), calculated=True)
    MapTimeFrame.objects.create(start_time=at(600))
    TimeFrame.objects.create(start_time=at(300))

    assert MapTimeFrame.get_stream_memory_cutoff() == at(600) - timedelta(minutes=2)
    # the thermometer's oldest open frame (300 s) is older; the demo has no frame: keep all
    assert stream_analysis.get_stream_cutoff_times() == {TweetStream: None}
    DemoTimeFrame.objects.create(start_time=at(900))
    assert stream_analysis.get_stream_cutoff_times() == {TweetStream: at(300)}


@pytest.mark.django_db
def test_cleanup_deletes_what_every_task_is_done_with_and_returns_the_count(legacy_tasks):
    write_tweets(minutes=2)
    for model in (TimeFrame, MapTimeFrame, DemoTimeFrame):
        model.objects.create(start_time=at(60))
    expected = Tweet.objects.filter(created_at__lt=at(60)).count()

    # the map keeps 2 minutes more than its frames need, and there is nothing before 0 s
    assert stream_analysis.cleanup() == 0
    MapTimeFrame.objects.update(start_time=at(180))
    assert stream_analysis.cleanup() == expected
    assert not Tweet.objects.filter(created_at__lt=at(60)).exists()


@pytest.mark.django_db
def test_a_stream_without_delete_before_or_count_before_keeps_everything(settings):
    # Given the original's defaults: a stream that implements neither
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "quiet": {"name": "Quiet", "frame_class_path": "tests.legacy_client.models.QuietTimeFrame"}
    }
    write_tweets(minutes=2)
    QuietTimeFrame.objects.create(start_time=at(60), calculated=True)
    stream = QuietTweetStream()

    assert (stream.delete_before(at(120)), stream.count_before(at(120))) == (0, 0)
    assert stream_analysis.cleanup() == 0
    assert Tweet.objects.filter(created_at__lt=at(60)).exists()


@pytest.mark.django_db
def test_the_abstract_intermediate_frame_class_keeps_the_due_index_in_the_database():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename, indexname FROM pg_indexes "
            "WHERE tablename LIKE 'legacy_client_%%' AND indexname LIKE '%%_due'"
        )
        found = dict(cursor.fetchall())

    assert found == {
        "legacy_client_timeframe": "timeframe_due",
        "legacy_client_demotimeframe": "demotimeframe_due",
        "legacy_client_maptimeframe": "maptimeframe_due",
        "legacy_client_quiettimeframe": "quiettimeframe_due",
    }
    assert "timeframe_due" in [index.name for index in TimeFrame._meta.indexes]
    # and the migrations say so: the models need no new migration
    call_command("makemigrations", "legacy_client", "--check", "--dry-run", stdout=StringIO())


@pytest.mark.django_db
def test_a_cleanup_that_raises_rolls_back_the_writes_of_calculate_then_the_frame_fails(
    legacy_tasks, monkeypatch, settings
):
    # Given a map frame whose cleanup() raises (the original kept calculate()'s writes)
    write_tweets(minutes=1)
    MapTimeFrame.objects.create(start_time=at(0))

    def broken_cleanup(self):
        raise RuntimeError("cleanup failed")

    monkeypatch.setattr(MapTimeFrame, "cleanup", broken_cleanup)

    result = calculation.calculate_due_frames(MapTimeFrame, deadline=time.monotonic() + 30)

    frame = MapTimeFrame.objects.get()
    assert (result.calculated, result.retrying) == (0, 1)
    assert (frame.calculated, frame.attempts) == (False, 1)
    assert "RuntimeError: cleanup failed" in frame.last_error
    assert not TweetChunk.objects.exists()  # calculate()'s rows went with the attempt

    # When the retry fails too, and it was the last attempt
    settings.STREAM_ANALYSIS_MAX_ATTEMPTS = 2
    MapTimeFrame.objects.update(next_attempt_at=at(0))
    result = calculation.calculate_due_frames(MapTimeFrame, deadline=time.monotonic() + 30)

    # Then the frame is failed, still without calculate()'s rows
    frame = MapTimeFrame.objects.get()
    assert (result.failed, frame.failed, frame.calculated, frame.attempts) == (1, True, False, 2)
    assert not TweetChunk.objects.exists()


# -- stream_analysis.cleanup.delay() ----------------------------------------------------------


def queued_cleanups() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE message->>'actor_name' = 'cleanup_streams'"
        )
        return int(cursor.fetchone()[0])


def test_cleanup_delay_is_deprecated_and_queues_one_cleanup_for_a_worker(live_db):
    with pytest.warns(DeprecationWarning, match=r"actors\.tasks\.cleanup_streams\.send\(\)"):
        assert stream_analysis.cleanup.delay() is None

    assert queued_cleanups() == 1


@pytest.mark.django_db
def test_cleanup_delay_without_the_runtime_names_the_app_to_install():
    signals.cleanup_requested.disconnect(runtime_signals.queue_cleanup)
    try:
        with (
            pytest.warns(DeprecationWarning),
            pytest.raises(stream_analysis.ConfigurationError, match="add 'actors' to"),
        ):
            stream_analysis.cleanup.delay()
    finally:
        signals.cleanup_requested.connect(runtime_signals.queue_cleanup)


# -- commands ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_analysis_ctrl_starts_and_stops_a_task_and_names_its_replacement(legacy_tasks):
    out, err = StringIO(), StringIO()

    with pytest.warns(DeprecationWarning, match="'manage.py stream_analysis start|stop KEY'"):
        call_command("analysis_ctrl", "start", "demo", stdout=out, stderr=err)
    assert AnalysisTask.get(key="demo").is_running is True
    with pytest.warns(DeprecationWarning):
        call_command("analysis_ctrl", "stop", "demo", stdout=out, stderr=err)

    assert AnalysisTask.get(key="demo").is_running is False
    assert out.getvalue() == "Demo Analysis started.\nDemo Analysis stopped.\n"
    assert "deprecated" in err.getvalue()


@pytest.mark.django_db
def test_analysis_ctrl_with_an_unknown_key_is_one_line_naming_the_valid_keys(legacy_tasks):
    with pytest.warns(DeprecationWarning), pytest.raises(CommandError, match="Valid keys: demo"):
        call_command("analysis_ctrl", "start", "nope", stdout=StringIO(), stderr=StringIO())


@pytest.mark.django_db
def test_the_originals_commands_keep_their_names_and_arguments(legacy_tasks):
    write_tweets(minutes=2)
    out = StringIO()

    call_command("stream_analysis", "start", "demo", stdout=out)
    call_command("stream_analysis", "stop", "demo", stdout=out)
    # backfill a stopped task: the original needed --force (here --force recalculates)
    call_command("backfill_analysis", "demo", "--no-wait", stdout=out)
    frames = DemoTimeFrame.objects.count()
    call_command("clear_queue", "demo", stdout=out)
    call_command("cleanup_streams", stdout=out)

    assert out.getvalue().splitlines()[:4] == [
        "Started demo.",
        "Stopped demo.",
        "demo: plan: 8 frames of 15s from 2026-01-01 00:00:00 to 2026-01-01 00:02:00 UTC "
        "(existing ones are kept).",
        "demo: created 8 frames, reset 0.",
    ]
    assert frames == 8
    assert DemoTimeFrame.objects.count() == 0  # clear_queue deleted the pending frames
    assert "Cleared 0 queued messages and 8 pending frames." in out.getvalue()
    assert "Deleted 0 stream items." in out.getvalue()

    # backfill_analysis without a key backfills every task; clear_queue needs a key
    out = StringIO()
    call_command("backfill_analysis", "--no-wait", stdout=out)
    assert [line for line in out.getvalue().splitlines() if ": plan: " not in line] == [
        "demo: created 8 frames, reset 0.",
        "map: created 2 frames, reset 0.",
        "thermometer: created 2 frames, reset 0.",
    ]
    with pytest.raises(CommandError, match="key"):
        call_command("clear_queue")
    out = StringIO()
    call_command("stream_analysis", "list", stdout=out)
    assert [line.split("\t")[0] for line in out.getvalue().splitlines()] == [
        "demo",
        "map",
        "thermometer",
    ]


# -- app loading ------------------------------------------------------------------------------


def run_setup(tmp_path: Path, installed: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with a tiny settings module (no database)."""
    (tmp_path / "tiny_settings.py").write_text(
        f"INSTALLED_APPS = {installed!r}\nUSE_TZ = True\nSECRET_KEY = 'x'\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tiny_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def write_old_style_package(tmp_path: Path) -> None:
    """The original's habit: a package whose __init__ imports its frame models."""
    package = tmp_path / "twitter_analysis"
    package.mkdir()
    (package / "__init__.py").write_text("from .models import TweetTimeFrame\n")
    (package / "models.py").write_text(
        "import stream_analysis\n\n"
        "class TweetTimeFrame(stream_analysis.BaseTimeFrame):\n"
        "    class Meta:\n        abstract = True\n"
    )


def test_a_package_init_importing_frame_models_is_told_to_import_them_from_models_or_ready(
    tmp_path,
):
    write_old_style_package(tmp_path)

    done = run_setup(
        tmp_path, ["stream_analysis", "twitter_analysis"], "import django; django.setup()"
    )

    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "ConfigurationError" in last
    assert "'twitter_analysis.models'" in last
    assert "while Django was still importing the INSTALLED_APPS packages" in last
    assert "AppConfig.ready()" in last
    assert "Did you forget" not in done.stderr


def test_using_a_model_before_django_setup_is_told_to_call_django_setup(tmp_path):
    done = run_setup(
        tmp_path,
        ["stream_analysis"],
        "import django.conf; django.conf.settings.INSTALLED_APPS\n"
        "import stream_analysis; stream_analysis.BaseTimeFrame",
    )

    last = done.stderr.strip().splitlines()[-1]
    assert "before Django's apps were loaded. Call django.setup() first" in last
    assert "'__main__'" in last


def test_stream_analysis_missing_from_installed_apps_is_told_to_add_it(tmp_path):
    done = run_setup(
        tmp_path,
        ["django.contrib.contenttypes"],
        "import django; django.setup()\nfrom stream_analysis import AnalysisTask",
    )

    last = done.stderr.strip().splitlines()[-1]
    assert "needs 'stream_analysis' in INSTALLED_APPS (used by '__main__')" in last
    assert "Add it to INSTALLED_APPS" in last
