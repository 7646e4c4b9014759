"""The original's class API of frames, and analysis tasks' state, on PostgreSQL.

CountFrame lasts 15 s (task "counts", autostart); MinuteFrame lasts 70 s (task
"minutely", not autostart); ``at(s)`` is a stream time s seconds after T0.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from actors import tasks
from stream_analysis import AnalysisTask, BaseTimeFrame, TimedIntervalMixin, UnknownTaskError
from tests.conftest import at
from tests.testapp.models import CountFrame, FlakyFrame, MinuteFrame

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("three_tasks")]


def frames(*starts: float, model: type[BaseTimeFrame] = CountFrame, **fields) -> list:
    """Create frames of ``model`` at ``at(s)`` for each s, in the given order."""
    return [model.objects.create(start_time=at(s), **fields) for s in starts]


# -- TimedIntervalMixin: duration and bounds ----------------------------------------


def test_a_timed_interval_lasts_one_minute_unless_told_otherwise():
    durations = {TimedIntervalMixin.DURATION, BaseTimeFrame.DURATION}

    assert durations == {timedelta(minutes=1)}


@pytest.mark.parametrize(
    ("model", "seconds"), [(CountFrame, 15), (MinuteFrame, 70)], ids=["15 s", "70 s"]
)
def test_a_frame_knows_its_duration_and_end(model, seconds):
    frame = model(start_time=at(140))

    assert frame.duration == timedelta(seconds=seconds)
    assert frame.duration_seconds == float(seconds)
    assert isinstance(frame.duration_seconds, float)
    assert frame.end_time == at(140 + seconds)


def test_latest_and_earliest_are_none_without_frames():
    assert CountFrame.get_latest() is None
    assert CountFrame.get_earliest() is None
    assert CountFrame.get_latest_end_time() is None
    assert CountFrame.get_earliest_start_time() is None


def test_latest_and_earliest_go_by_start_time_not_by_creation_order():
    # Given frames created out of order
    middle, newest, oldest = frames(15, 45, 0)

    assert CountFrame.get_latest() == newest
    assert CountFrame.get_earliest() == oldest
    assert CountFrame.get_latest_end_time() == at(60)
    assert CountFrame.get_earliest_start_time() == at(0)
    assert middle not in (CountFrame.get_latest(), CountFrame.get_earliest())


def test_the_latest_end_time_uses_the_models_own_duration():
    frames(0, 70, model=MinuteFrame)

    assert MinuteFrame.get_latest_end_time() == at(140)


# -- get_in_range ------------------------------------------------------------------


def starts(queryset) -> list:
    return sorted(frame.start_time for frame in queryset)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # [15, 30) and [30, 45) overlap [20, 40); [0, 15) ended and [45, 60) not begun.
        (20, 40, [15, 30]),
        # Touching is not overlapping: [0, 15) ends where [15, 30) begins.
        (15, 30, [15]),
        (14.999, 30.001, [0, 15, 30]),
        (0, 60, [0, 15, 30, 45]),
        (60, 120, []),
        (-30, 0, []),
        (None, 30, [0, 15]),
        (31, None, [30, 45]),
        (None, None, [0, 15, 30, 45]),
    ],
)
def test_get_in_range_returns_the_frames_overlapping_the_half_open_range(start, end, expected):
    frames(0, 15, 30, 45)

    found = CountFrame.get_in_range(
        start=None if start is None else at(start), end=None if end is None else at(end)
    )

    assert starts(found) == [at(s) for s in expected]


def test_get_in_range_filters_on_calculated_when_asked():
    frames(0, 30, calculated=True)
    frames(15, 45)

    assert starts(CountFrame.get_in_range(calculated=True)) == [at(0), at(30)]
    assert starts(CountFrame.get_in_range(calculated=False)) == [at(15), at(45)]
    assert starts(CountFrame.get_in_range(at(10), at(35), calculated=True)) == [at(0), at(30)]


def test_get_in_range_overlap_uses_the_models_duration():
    frames(0, 70, 140, model=MinuteFrame)

    # [0, 70) overlaps [69, 71); a 15 s frame at 0 would not.
    assert starts(MinuteFrame.get_in_range(at(69), at(71))) == [at(0), at(70)]


# -- performance stats and counts ------------------------------------------------------


def test_performance_stats_average_the_calculated_frames_only():
    frames(0, analysis_time=1.0, cleanup_time=0.5, calculated=True)
    frames(15, analysis_time=3.0, cleanup_time=1.5, calculated=True)
    frames(30, analysis_time=100.0, cleanup_time=100.0)  # not calculated: ignored

    stats = CountFrame.get_performance_stats()

    assert stats == {"analysis_time": pytest.approx(2.0), "cleanup_time": pytest.approx(1.0)}
    assert CountFrame.get_average_analysis_time() == pytest.approx(2.0)


def test_performance_stats_are_limited_to_the_range():
    frames(0, analysis_time=1.0, cleanup_time=0.5, calculated=True)
    frames(15, analysis_time=3.0, cleanup_time=1.5, calculated=True)

    assert CountFrame.get_performance_stats(at(15), at(30)) == {
        "analysis_time": pytest.approx(3.0),
        "cleanup_time": pytest.approx(1.5),
    }
    assert CountFrame.get_average_analysis_time(start=at(0), end=at(15)) == pytest.approx(1.0)


def test_performance_stats_are_none_without_calculated_frames():
    frames(0, analysis_time=1.0)

    assert CountFrame.get_performance_stats() == {"analysis_time": None, "cleanup_time": None}
    assert CountFrame.get_average_analysis_time() is None


def test_count_completed_counts_calculated_frames_only():
    frames(0, 15, 30, calculated=True)
    frames(45)
    frames(60, failed=True, attempts=3)
    frames(0, 15, model=FlakyFrame, calculated=True)  # another model

    assert CountFrame.count_completed() == 3


# -- memory cutoff -----------------------------------------------------------------


def test_without_frames_the_memory_cutoff_keeps_everything():
    assert CountFrame.get_stream_memory_cutoff() is None


def test_with_every_frame_calculated_the_cutoff_is_the_newest_frame():
    frames(30, 0, 15, calculated=True)

    assert CountFrame.get_stream_memory_cutoff() == at(30)


def test_the_cutoff_is_the_oldest_uncalculated_frame():
    frames(0, 30, 60, calculated=True)
    frames(45, 15)

    assert CountFrame.get_stream_memory_cutoff() == at(15)


def test_a_failed_frame_counts_as_uncalculated_for_the_cutoff():
    frames(15, 30, calculated=True)
    frames(0, failed=True, attempts=3)

    assert CountFrame.get_stream_memory_cutoff() == at(0)


def test_a_frame_waiting_for_a_retry_counts_as_uncalculated_for_the_cutoff():
    frames(0, 30, calculated=True)
    frames(15, attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5))

    assert CountFrame.get_stream_memory_cutoff() == at(15)


# -- status and uniqueness ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, "pending"),
        ({"attempts": 1}, "retrying"),
        ({"attempts": 3, "failed": True}, "failed"),
        ({"calculated": True}, "calculated"),
        ({"calculated": True, "attempts": 2}, "calculated"),
    ],
)
def test_a_frame_status_says_where_it_is(fields, status):
    (frame,) = frames(0, **fields)

    assert frame.status == status
    assert status in str(frame)


def test_a_new_frame_is_pending_with_database_defaults():
    (frame,) = frames(0)
    frame.refresh_from_db()

    assert (frame.calculated, frame.failed, frame.missing_data) == (False, False, False)
    assert (frame.attempts, frame.last_error, frame.item_count) == (0, "", 0)
    assert frame.status == "pending"


def test_two_frames_cannot_share_a_start_time():
    frames(15)

    with pytest.raises(IntegrityError), transaction.atomic():
        CountFrame.objects.create(start_time=at(15))

    assert CountFrame.objects.count() == 1


def test_different_frame_models_may_share_a_start_time():
    frames(0)
    frames(0, model=MinuteFrame)

    assert CountFrame.objects.count() == MinuteFrame.objects.count() == 1


# -- AnalysisTask ------------------------------------------------------------------


def test_get_with_a_key_returns_that_task():
    task = AnalysisTask.get("counts")

    assert isinstance(task, AnalysisTask)
    assert (task.key, task.name, task.autostart) == ("counts", "Item counts", True)
    assert task.frame_class_path == "tests.testapp.models.CountFrame"


def test_get_with_an_unknown_key_returns_none_like_the_original():
    assert AnalysisTask.get("nope") is None
    assert AnalysisTask.get(key="nope") is None


def test_get_without_a_key_returns_every_configured_task():
    tasks = AnalysisTask.get()

    assert [task.key for task in tasks] == ["counts", "flaky", "minutely"]
    assert all(isinstance(task, AnalysisTask) for task in tasks)


def test_get_without_a_key_and_no_tasks_configured_is_empty(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {}

    assert AnalysisTask.get() == []


def test_require_names_the_valid_keys_for_an_unknown_key():
    with pytest.raises(UnknownTaskError) as raised:
        AnalysisTask.require("nope")

    message = str(raised.value)
    assert "'nope'" in message
    assert "counts, flaky, minutely" in message
    assert isinstance(raised.value, KeyError)  # an unknown key, as dict lookups raise


def test_require_returns_a_known_task():
    assert AnalysisTask.require("minutely").key == "minutely"


def test_a_task_is_one_row_however_often_it_is_fetched():
    first = AnalysisTask.get("counts")
    AnalysisTask.get()
    again = AnalysisTask.require("counts")

    assert first.pk == again.pk
    assert AnalysisTask.objects.filter(key="counts").count() == 1


@pytest.mark.parametrize(("key", "running"), [("counts", True), ("minutely", False)])
def test_a_task_follows_autostart_until_started_or_stopped(key, running):
    task = AnalysisTask.get(key)

    assert task.running is None
    assert task.is_running is running


def test_schedule_starts_a_task_and_the_state_persists():
    AnalysisTask.get("minutely").schedule()

    assert AnalysisTask.get("minutely").is_running is True
    assert AnalysisTask.objects.get(key="minutely").running is True


def test_cancel_stops_an_autostarted_task_and_the_state_persists():
    was_running = AnalysisTask.get("counts").cancel()

    assert was_running is True
    assert AnalysisTask.get("counts").is_running is False
    assert AnalysisTask.objects.get(key="counts").running is False


def test_cancel_reports_whether_the_task_was_running():
    assert AnalysisTask.get("minutely").cancel() is False


def test_an_explicit_start_outlives_a_change_of_autostart(settings):
    AnalysisTask.get("counts").cancel()
    AnalysisTask.get("minutely").schedule()

    # When autostart flips in the settings
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        key: {**entry, "autostart": not entry["autostart"]}
        for key, entry in settings.ANALYSIS_TIME_FRAME_TASKS.items()
    }

    assert AnalysisTask.get("counts").is_running is False
    assert AnalysisTask.get("minutely").is_running is True


def test_a_stopped_task_can_be_started_again():
    task = AnalysisTask.get("counts")
    task.cancel()
    task.schedule()

    assert AnalysisTask.get("counts").is_running is True


@pytest.mark.parametrize(
    ("key", "model"),
    [("counts", CountFrame), ("flaky", FlakyFrame), ("minutely", MinuteFrame)],
)
def test_a_task_imports_its_frame_class(key, model):
    assert AnalysisTask.get(key).get_frame_class() is model


def test_clear_queue_deletes_pending_frames_only():
    # Given frames in every state
    frames(0, calculated=True)
    frames(15, failed=True, attempts=3)
    frames(30)
    frames(45, attempts=1, next_attempt_at=timezone.now() + timedelta(minutes=5))
    frames(30, model=FlakyFrame)  # another task's frame

    messages, deleted = AnalysisTask.get("counts").clear_queue()

    assert (messages, deleted) == (0, 2)
    assert starts(CountFrame.objects.all()) == [at(0), at(15)]
    assert FlakyFrame.objects.count() == 1


def test_clear_queue_of_a_task_without_frames_deletes_nothing():
    assert AnalysisTask.get("minutely").clear_queue() == (0, 0)


@pytest.mark.usefixtures("live_db")
def test_clear_queue_deletes_the_tasks_queued_messages_only():
    # Given messages queued for two tasks (no worker is running)
    tasks.calculate.send("counts")
    tasks.calculate.send("counts")
    tasks.coordinate.send("counts")
    tasks.calculate.send("minutely")
    frames(30)

    messages, deleted = AnalysisTask.get("counts").clear_queue()

    assert (messages, deleted) == (3, 1)
    assert AnalysisTask.get("minutely").clear_queue() == (1, 0)


@pytest.mark.django_db
def test_the_apps_models_match_their_migrations():
    # A model change without its migration would fail at the user's first query instead
    call_command(
        "makemigrations",
        "stream_analysis",
        "stream_analysis_actors",
        "--check",
        "--dry-run",
        stdout=StringIO(),
    )
