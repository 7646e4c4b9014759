"""Bad input from a user's stream, frame or settings: a clear outcome, nothing lost."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from django.db import DatabaseError, connection

from actors import tasks
from stream_analysis import ConfigurationError, StreamError, calculation, coordinator
from stream_analysis.exceptions import FrameGridChanged
from stream_analysis.models import AnalysisTask
from tests.conftest import at
from tests.streams import write_stream
from tests.testapp.models import CountFrame, Item, ItemStream

pytestmark = pytest.mark.django_db


def tick(key: str = "counts") -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require(key), count_limit=1000)


def drain() -> calculation.DrainResult:
    return calculation.calculate_due_frames(CountFrame, deadline=time.monotonic() + 30)


# -- the stream interface -------------------------------------------------------------


def test_a_stream_that_returns_none_for_its_times_creates_nothing(monkeypatch):
    Item.objects.create(created_at=at(100))
    monkeypatch.setattr(ItemStream, "get_latest_stream_time", lambda self: None)

    assert tick().created == 0
    assert CountFrame.objects.count() == 0


def test_a_stream_whose_latest_time_is_before_its_earliest_is_an_error_naming_it(monkeypatch):
    Item.objects.create(created_at=at(100))
    monkeypatch.setattr(ItemStream, "get_earliest_stream_time", lambda self: at(200))

    with pytest.raises(StreamError, match="is before get_earliest_stream_time"):
        tick()
    assert CountFrame.objects.count() == 0


def test_a_stream_returning_naive_datetimes_is_an_error_naming_the_fix(monkeypatch):
    Item.objects.create(created_at=at(100))
    monkeypatch.setattr(ItemStream, "get_latest_stream_time", lambda self: datetime(2026, 1, 2))

    with pytest.raises(StreamError, match="timezone-aware"):
        tick()


def test_get_stream_data_raising_is_a_failed_attempt_with_its_traceback(monkeypatch):
    CountFrame.objects.create(start_time=at(0))

    def broken(self, start, end):
        raise ConnectionError("the stream's store is down")

    monkeypatch.setattr(ItemStream, "get_stream_data", broken)

    result = drain()

    frame = CountFrame.objects.get()
    assert (result.retrying, frame.attempts, frame.calculated) == (1, 1, False)
    assert "ConnectionError: the stream's store is down" in frame.last_error


# -- calculate() --------------------------------------------------------------------


def test_a_calculate_that_returns_a_value_is_fine_and_the_value_is_ignored(monkeypatch):
    CountFrame.objects.create(start_time=at(0))
    Item.objects.create(created_at=at(1))

    def returns(self, stream_data):
        self.item_count = len(stream_data)
        return stream_data  # the original's calculate() returned the data it was done with

    monkeypatch.setattr(CountFrame, "calculate", returns)

    assert drain().calculated == 1
    assert CountFrame.objects.get().item_count == 1


# -- settings changed under running tasks ---------------------------------------------


def test_messages_for_a_task_removed_from_settings_are_dropped_and_its_frames_kept(settings):
    CountFrame.objects.create(start_time=at(0))
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        key: value for key, value in settings.ANALYSIS_TIME_FRAME_TASKS.items() if key != "counts"
    }

    tasks.coordinate.fn("counts")  # logs a warning, raises nothing, retries nothing
    tasks.calculate.fn("counts")

    frame = CountFrame.objects.get()
    assert (frame.calculated, frame.failed, frame.attempts) == (False, False, 0)


def test_a_frame_model_whose_table_is_missing_is_reported_with_the_fix(caplog):
    # Given a frame model whose migration was never applied (its table is gone)
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 100))
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {CountFrame._meta.db_table} CASCADE")

    # When the coordinator and a calculator run for its task
    tasks.coordinate.fn("counts")
    tasks.calculate.fn("counts")

    # Then each says once what to do, and raises nothing for Dramatiq to retry
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 2
    assert all("does not exist" in e and "makemigrations" in e for e in errors)


def test_the_domain_raises_a_missing_frame_table_as_a_configuration_error_naming_the_fix():
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {CountFrame._meta.db_table} CASCADE")

    with pytest.raises(ConfigurationError, match="makemigrations") as ticked:
        tick()
    with pytest.raises(ConfigurationError, match="makemigrations") as drained:
        drain()

    for raised in (ticked.value, drained.value):
        assert isinstance(raised.__cause__, DatabaseError)  # the database's own error kept


def test_a_stream_mistake_in_a_tick_is_reported_once_not_retried(monkeypatch, caplog):
    Item.objects.create(created_at=at(100))
    monkeypatch.setattr(ItemStream, "get_latest_stream_time", lambda self: datetime(2026, 1, 2))

    tasks.coordinate.fn("counts")  # raises nothing: Dramatiq would retry it 20 times

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "timezone-aware" in errors[0]
    assert CountFrame.objects.count() == 0


def test_a_duration_changed_while_frames_exist_stops_frame_creation_with_the_fix(monkeypatch):
    # Given 15 s frames made by the coordinator
    write_stream(8)
    tick()
    before = CountFrame.objects.count()

    # When DURATION is changed in code and the stream goes on
    monkeypatch.setattr(CountFrame, "DURATION", timedelta(seconds=60))
    Item.objects.create(created_at=at(600))

    # Then the tick refuses, naming both grids and the fix, and creates nothing
    with pytest.raises(FrameGridChanged, match=r"15s\+0s.*60s\+0s.*Restore DURATION"):
        tick()
    assert CountFrame.objects.count() == before

    # And once the old frames are deleted, the task starts again on the new grid
    CountFrame.objects.all().delete()
    assert tick().created > 0
    starts = CountFrame.objects.values_list("start_time", flat=True)
    assert all(start.second == 0 for start in starts)


def test_a_duration_change_is_reported_by_the_coordinator_not_retried(monkeypatch, caplog):
    write_stream(8)
    tick()
    monkeypatch.setattr(CountFrame, "DURATION", timedelta(seconds=60))

    tasks.coordinate.fn("counts")

    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "would not line up" in errors[0]
