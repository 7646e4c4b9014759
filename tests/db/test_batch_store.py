"""Storing a batch's calculated frames with one UPDATE, and what happens when it fails."""

from __future__ import annotations

import time

import pytest
from django.db import DataError
from django.db.models import F
from django.db.models.signals import post_save
from django.test.utils import isolate_apps

from stream_analysis import batch_store, calculation
from tests.conftest import at
from tests.testapp.models import CalculationLog, CountFrame, Item

pytestmark = pytest.mark.django_db


class Interrupted(BaseException):
    """Stands in for a worker's time-limit interrupt (a BaseException)."""


def make_frames(count: int) -> None:
    CountFrame.objects.bulk_create(CountFrame(start_time=at(15 * i)) for i in range(count))


def drain(**kwargs) -> calculation.DrainResult:
    return calculation.calculate_due_frames(CountFrame, deadline=time.monotonic() + 30, **kwargs)


def logged_starts() -> list:
    return sorted(CalculationLog.objects.values_list("start_time", flat=True))


def set_after_calculate(monkeypatch, values: dict, raises: dict | None = None) -> list:
    """Make calculate() set item_count to ``values[start]`` (or raise); return the calls."""
    original = CountFrame.calculate
    calls = []

    def calculate(self, stream_data):
        calls.append(self.start_time)
        original(self, stream_data)
        if self.start_time in values:
            self.item_count = values[self.start_time]
        if raises and self.start_time in raises:
            raise raises[self.start_time]

    monkeypatch.setattr(CountFrame, "calculate", calculate)
    return calls


def test_every_field_of_a_calculated_frame_is_stored_by_the_batch_update():
    make_frames(2)
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 2, 16))

    result = drain()

    assert result.calculated == 2
    counts = {at(0): 2, at(15): 1}
    for frame in CountFrame.objects.all():
        assert (frame.calculated, frame.attempts) == (True, 1)
        assert frame.item_count == counts[frame.start_time]
        assert frame.calculated_at is not None and frame.analysis_time is not None
        assert frame.cleanup_time is not None and frame.last_error == ""


@pytest.mark.parametrize("bad", [2**40, None], ids=["out_of_range", "null"])
def test_a_result_the_table_rejects_fails_only_its_own_frame(monkeypatch, bad):
    # Given three frames, the middle one setting a value its column rejects
    make_frames(3)
    calls = set_after_calculate(monkeypatch, {at(15): bad})

    # When they are calculated in one batch
    result = drain()

    # Then the other two are stored, and the bad one is a failed attempt without its writes
    assert (result.calculated, result.retrying, result.failed) == (2, 1, 0)
    assert set(
        CountFrame.objects.filter(calculated=True).values_list("start_time", flat=True)
    ) == {
        at(0),
        at(30),
    }
    bad_frame = CountFrame.objects.get(start_time=at(15))
    assert (bad_frame.calculated, bad_frame.attempts) == (False, 1)
    assert "item_count" in bad_frame.last_error or "out of range" in bad_frame.last_error
    assert logged_starts() == [at(0), at(30)]
    # The batch was rolled back once and calculated again frame by frame
    assert sorted(calls) == sorted([at(0), at(15), at(30)] * 2)


def test_a_rejected_result_and_an_interrupt_in_one_batch_record_both_attempts(monkeypatch):
    # Given frames claimed newest first: 30 sets a rejected value, 15 is interrupted
    make_frames(3)
    set_after_calculate(monkeypatch, {at(30): 2**40}, raises={at(15): Interrupted()})

    result = drain(interrupts=(Interrupted,))

    # Then both attempts are recorded once, the run stops, and frame 0 is left pending
    assert result.interrupted and (result.calculated, result.retrying) == (0, 2)
    attempts = dict(CountFrame.objects.values_list("start_time", "attempts"))
    assert attempts == {at(30): 1, at(15): 1, at(0): 0}
    assert "Interrupted" in CountFrame.objects.get(start_time=at(15)).last_error
    assert logged_starts() == []


def test_an_expression_set_by_calculate_is_saved_by_save(monkeypatch):
    make_frames(2)
    CountFrame.objects.update(item_count=10)
    set_after_calculate(monkeypatch, {at(15): F("item_count") + 5})

    assert drain().calculated == 2

    assert dict(CountFrame.objects.values_list("start_time", "item_count")) == {
        at(0): 0,
        at(15): 15,
    }


def test_a_model_with_a_post_save_receiver_is_saved_frame_by_frame():
    make_frames(3)
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.start_time)

    post_save.connect(receiver, sender=CountFrame)
    try:
        assert not batch_store.bulk_storable(CountFrame)
        assert drain().calculated == 3
    finally:
        post_save.disconnect(receiver, sender=CountFrame)

    assert sorted(seen) == [at(0), at(15), at(30)]
    assert batch_store.bulk_storable(CountFrame)


def test_an_over_long_string_is_an_error_not_cut_short():
    # The batch UPDATE casts values to their column's type without its length
    log = CalculationLog.objects.create(frame_model="CountFrame", start_time=at(0), pid=1)

    with pytest.raises(DataError, match="too long"):
        batch_store.store_frames(CalculationLog, [[log.pk, "x" * 51, log.start_time, log.pid]])


@isolate_apps("tests.testapp")
def test_a_proxy_frame_model_stores_the_fields_of_its_concrete_model():

    class ProxyCountFrame(CountFrame):
        class Meta:
            proxy = True
            app_label = "testapp"

    assert batch_store.saved_fields(ProxyCountFrame) == batch_store.saved_fields(CountFrame) != ()
