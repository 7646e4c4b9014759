"""Operator actions on frames: one UPDATE each, then the tasks using the model are ticked."""

from __future__ import annotations

import pytest

from stream_analysis import operations
from stream_analysis.exceptions import MissingDataError
from tests.conftest import at
from tests.testapp.models import CountFrame, FlakyFrame, Item

pytestmark = pytest.mark.django_db


def test_retry_failed_resets_failed_frames_only_and_ticks_their_task(ticks):
    failed = CountFrame.objects.create(start_time=at(0), failed=True, attempts=3, last_error="x")
    CountFrame.objects.create(start_time=at(15), calculated=True, attempts=1)
    FlakyFrame.objects.create(start_time=at(0), failed=True, attempts=3)

    assert operations.retry_failed(CountFrame) == 1

    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("pending", 0, "")
    assert CountFrame.objects.get(start_time=at(15)).calculated
    assert FlakyFrame.objects.get().failed
    assert ticks == ["counts"]


def test_recompute_resets_the_given_frames_whatever_their_status(ticks):
    Item.objects.create(created_at=at(0))  # the stream still holds the frames' data
    for seconds in (0, 15, 30):
        CountFrame.objects.create(start_time=at(seconds), calculated=True, calculated_at=at(60))

    count = operations.recompute(CountFrame, CountFrame.objects.filter(start_time__lt=at(30)))

    assert count == 2
    statuses = list(CountFrame.objects.order_by("start_time").values_list("calculated", flat=True))
    assert statuses == [False, False, True]
    assert CountFrame.objects.get(start_time=at(0)).status == "stale"
    assert ticks == ["counts"]


def test_nothing_to_reset_ticks_nothing(ticks):
    CountFrame.objects.create(start_time=at(0), calculated=True)

    assert operations.retry_failed(CountFrame) == 0
    assert operations.recompute(CountFrame, CountFrame.objects.none()) == 0
    assert ticks == []


def test_a_queryset_of_another_model_is_refused():
    with pytest.raises(TypeError, match="CountFrame"):
        operations.recompute(CountFrame, FlakyFrame.objects.all())


def test_the_tasks_using_a_frame_model_are_found_by_their_configuration():
    assert [task.key for task in operations.tasks_using(CountFrame)] == ["counts"]


def test_recompute_refuses_frames_before_the_earliest_stored_item_and_changes_nothing(ticks):
    # Given calculated frames 0, 15, 30 and a stream whose items before 40 were deleted
    Item.objects.create(created_at=at(40))
    for seconds in (0, 15, 30):
        CountFrame.objects.create(start_time=at(seconds), calculated=True, item_count=3)

    with pytest.raises(MissingDataError, match=r"^2 of these CountFrame frames start before"):
        operations.recompute(CountFrame)

    assert CountFrame.objects.filter(calculated=True, missing_data=False).count() == 3
    assert ticks == []


def test_recompute_allowed_to_lack_data_marks_those_frames_missing_data(ticks):
    Item.objects.create(created_at=at(40))
    for seconds in (0, 15, 30):
        CountFrame.objects.create(start_time=at(seconds), calculated=True)

    assert operations.recompute(CountFrame, allow_missing_data=True) == 3

    rows = CountFrame.objects.order_by("start_time").values_list("calculated", "missing_data")
    assert list(rows) == [(False, True), (False, True), (False, False)]


def test_with_the_stream_emptied_every_frame_may_lack_data():
    CountFrame.objects.create(start_time=at(0), calculated=True)

    plan = operations.recompute_plan(CountFrame)

    assert (plan.frames, plan.calculated, plan.missing_data) == (1, 1, 1)
    assert plan.complete_from == at(15)
