"""Deleting analysed stream data: cutoffs per stream class, and cleanup().

The three configured tasks (counts, flaky, minutely) all read ItemStream; a
test that needs a second stream points MinuteFrame at LogStream for its duration.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, models

import stream_analysis
from stream_analysis import AbstractStream, AnalysisTask
from tests.conftest import at
from tests.testapp.models import (
    CalculationLog,
    CountFrame,
    FlakyFrame,
    Item,
    ItemStream,
    MinuteFrame,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("three_tasks")]


class LogStream(AbstractStream):
    """A second stream, over another table, so that cutoffs are kept apart per stream."""

    def is_stream_empty(self):
        return not CalculationLog.objects.exists()

    def get_earliest_stream_time(self):
        return CalculationLog.objects.aggregate(v=models.Min("start_time"))["v"]

    def get_latest_stream_time(self):
        return CalculationLog.objects.aggregate(v=models.Max("start_time"))["v"]

    def get_stream_data(self, start, end):
        return CalculationLog.objects.filter(start_time__gte=start, start_time__lt=end)

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return CalculationLog.objects.filter(start_time__lt=cutoff_datetime).delete()[0]

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return CalculationLog.objects.filter(start_time__lt=cutoff_datetime).count()


def frames(model, *starts: float, **fields) -> None:
    model.objects.bulk_create(model(start_time=at(s), **fields) for s in starts)


def items(*seconds: float) -> None:
    Item.objects.bulk_create(Item(created_at=at(s)) for s in seconds)


def item_times() -> list:
    return sorted(Item.objects.values_list("created_at", flat=True))


def logs(*seconds: float) -> None:
    CalculationLog.objects.bulk_create(
        CalculationLog(frame_model="x", start_time=at(s), pid=0) for s in seconds
    )


@pytest.fixture
def every_task_needs_data_from_15():
    """counts needs 45 on, flaky 15 on, minutely 70 on: ItemStream is needed from 15."""
    frames(CountFrame, 0, 15, 30, 45, calculated=True)
    frames(FlakyFrame, 0, calculated=True)
    frames(FlakyFrame, 15)
    frames(MinuteFrame, 0, 70, calculated=True)


@pytest.fixture
def minute_frames_read_logs(monkeypatch):
    monkeypatch.setattr(MinuteFrame, "STREAM_CLASS", LogStream)


# -- get_stream_cutoff_times -----------------------------------------------------------


def test_without_frames_every_stream_is_kept_whole():
    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: None}


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_the_cutoff_of_a_stream_is_the_minimum_over_every_task_reading_it():
    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(15)}


def test_a_task_without_frames_keeps_its_whole_stream():
    # Given two tasks that are done with the data before 45, and one with no frame yet
    frames(CountFrame, 0, 15, 30, 45, calculated=True)
    frames(FlakyFrame, 45, 60, calculated=True)

    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: None}


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_a_stopped_task_still_holds_the_data_it_has_not_analysed():
    AnalysisTask.get("flaky").cancel()

    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(15)}


@pytest.mark.usefixtures("every_task_needs_data_from_15", "minute_frames_read_logs")
def test_cutoffs_are_kept_apart_per_stream_class():
    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(15), LogStream: at(70)}


@pytest.mark.usefixtures("minute_frames_read_logs")
def test_a_stream_without_frames_is_kept_whole_while_another_is_trimmed():
    frames(CountFrame, 0, 15, calculated=True)
    frames(FlakyFrame, 30, calculated=True)

    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(15), LogStream: None}


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_only_configured_tasks_hold_data(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        key: entry for key, entry in settings.ANALYSIS_TIME_FRAME_TASKS.items() if key != "flaky"
    }

    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(45)}


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_a_frame_class_may_override_its_memory_cutoff(monkeypatch):
    # A frame model that keeps a day of history for a rolling window, say.
    monkeypatch.setattr(MinuteFrame, "get_stream_memory_cutoff", classmethod(lambda cls: at(5)))

    assert stream_analysis.get_stream_cutoff_times() == {ItemStream: at(5)}


# -- cleanup -------------------------------------------------------------------------


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_cleanup_deletes_only_items_strictly_before_the_cutoff():
    items(0, 10, 14.999999, 15, 20, 40, 90)

    deleted = stream_analysis.cleanup()

    assert deleted == 3
    assert item_times() == [at(15), at(20), at(40), at(90)]


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_cleanup_twice_deletes_nothing_more():
    items(0, 15, 20)
    stream_analysis.cleanup()

    assert stream_analysis.cleanup() == 0
    assert item_times() == [at(15), at(20)]


def test_cleanup_keeps_everything_while_a_task_needs_everything():
    frames(CountFrame, 0, 15, 30, 45, calculated=True)
    frames(FlakyFrame, 45, calculated=True)
    items(0, 10, 20, 50)

    assert stream_analysis.cleanup() == 0
    assert len(item_times()) == 4


@pytest.mark.usefixtures("every_task_needs_data_from_15", "minute_frames_read_logs")
def test_cleanup_trims_each_stream_to_its_own_cutoff_and_sums_the_counts():
    items(0, 10, 15, 80)  # ItemStream: cutoff 15
    logs(0, 69, 70, 71)  # LogStream: cutoff 70

    deleted = stream_analysis.cleanup()

    assert deleted == 2 + 2
    assert item_times() == [at(15), at(80)]
    assert sorted(CalculationLog.objects.values_list("start_time", flat=True)) == [at(70), at(71)]


@pytest.mark.usefixtures("every_task_needs_data_from_15")
def test_the_stream_counts_what_cleanup_would_delete():
    items(0, 10, 14.999999, 15, 20)
    cutoff = stream_analysis.get_stream_cutoff_times()[ItemStream]

    expected = ItemStream().count_before(cutoff)

    assert expected == 3
    assert stream_analysis.cleanup() == expected


def test_the_readme_cycle_of_frames_and_cleanup_keeps_what_is_still_needed():
    # Given the README's setup: items stream in, 15 s count frames are made, some analysed
    items(1, 2, 16, 31, 32, 33, 46)
    frames(CountFrame, 0, 15, calculated=True)
    frames(CountFrame, 30)
    frames(FlakyFrame, 0, 15, 30, calculated=True)
    frames(MinuteFrame, 0, calculated=True)

    # When the data of analysed frames is cleaned up
    deleted = stream_analysis.cleanup()

    # Then only the data of frames still to analyse (and of frames to come) is kept
    assert deleted == 0  # minutely's newest calculated frame [0, 70) still counts as needed
    frames(MinuteFrame, 70)
    assert stream_analysis.cleanup() == 3
    assert item_times() == [at(31), at(32), at(33), at(46)]


# -- one snapshot ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_cutoff_read_while_workers_commit_never_passes_a_frame_still_open():
    # Given every CountFrame calculated
    frames(CountFrame, 0, calculated=True)

    # When, while the cutoff is read, a coordinator commits two new frames and a worker
    # (newest first) calculates the newer one, from other connections
    def coordinator_and_worker_commit():
        frames(CountFrame, 15)
        frames(CountFrame, 30, calculated=True)
        connection.close()

    committed = []

    def meanwhile(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not committed:
            committed.append(True)
            other = threading.Thread(target=coordinator_and_worker_commit)
            other.start()
            other.join()
        return result

    with connection.execute_wrapper(meanwhile):
        cutoff = CountFrame.get_stream_memory_cutoff()

    # Then the cutoff is read from one snapshot: before the new frames, or with 15 open
    assert cutoff in (at(0), at(15))


def test_two_stream_classes_over_one_table_are_cleaned_to_the_earliest_cutoff_of_both(settings):
    # Given CountFrame (ItemStream, 15 s, nothing calculated yet) and SecondSqlFrame
    # (ItemModelStream over the same Item table, calculated up to 90 s)
    from tests.testapp.models import ItemModelStream, SecondSqlFrame

    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "counts": settings.ANALYSIS_TIME_FRAME_TASKS["counts"],
        "seconds_sql": {
            "name": "Second counts by AGGREGATES",
            "frame_class_path": "tests.testapp.models.SecondSqlFrame",
        },
    }
    items(1, 20, 50, 89, 95)
    frames(CountFrame, 0, 15)
    frames(SecondSqlFrame, *range(0, 91), calculated=True)
    assert SecondSqlFrame.get_stream_memory_cutoff() == at(90)
    assert CountFrame.get_stream_memory_cutoff() == at(0)

    # When the streams are cleaned up
    cutoffs = stream_analysis.get_stream_cutoff_times()
    deleted = stream_analysis.cleanup()

    # Then neither deletes an item CountFrame has not analysed (ItemModelStream alone
    # would have deleted the items before 90 s)
    assert cutoffs == {ItemStream: at(0), ItemModelStream: at(0)}
    assert deleted == 0
    assert item_times() == [at(s) for s in (1, 20, 50, 89, 95)]
