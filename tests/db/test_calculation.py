"""Claiming and calculating frames in process, against real PostgreSQL transactions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from stream_analysis import calculation
from stream_analysis.calculation import DrainResult
from tests.conftest import at, held_in_another_transaction
from tests.testapp.models import Behaviour, CalculationLog, CountFrame, Item

pytestmark = pytest.mark.django_db


def make_frames(count: int) -> None:
    CountFrame.objects.bulk_create(CountFrame(start_time=at(15 * i)) for i in range(count))


def drain(**kwargs) -> DrainResult:
    return calculation.calculate_due_frames(CountFrame, deadline=time.monotonic() + 30, **kwargs)


def test_frames_are_claimed_newest_first():
    make_frames(5)
    with transaction.atomic():
        claimed = calculation.claim_frames(CountFrame, 3)
    assert [f.start_time for f in claimed] == [at(60), at(45), at(30)]


def test_a_failing_calculate_rolls_back_its_writes_and_records_the_attempt():
    make_frames(1)
    Behaviour.objects.create(frame_start=at(0), failures=1)

    result = drain()

    frame = CountFrame.objects.get()
    assert (result.calculated, result.retrying, result.failed) == (0, 1, 0)
    assert (frame.calculated, frame.failed, frame.attempts) == (False, False, 1)
    assert "RuntimeError: planned failure 1" in frame.last_error
    assert frame.next_attempt_at > timezone.now() - timedelta(seconds=1)
    assert not CalculationLog.objects.exists()  # the failed attempt's row is gone


def test_a_frame_waiting_for_its_retry_is_not_claimed_before_its_time():
    make_frames(1)
    CountFrame.objects.update(attempts=1, next_attempt_at=timezone.now() + timedelta(hours=1))

    assert drain().calculated == 0
    assert calculation.next_retry_at(CountFrame) is not None

    CountFrame.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert drain().calculated == 1


def test_the_last_attempt_marks_the_frame_failed_and_keeps_it():
    make_frames(1)
    CountFrame.objects.update(attempts=2)  # MAX_ATTEMPTS is 3
    Behaviour.objects.create(frame_start=at(0), failures=9)

    result = drain()

    frame = CountFrame.objects.get()
    assert result.failed == 1
    assert (frame.failed, frame.attempts, frame.next_attempt_at) == (True, 3, None)
    assert drain().calculated == 0  # failed frames are not claimed again


def test_a_successful_frame_stores_results_timings_and_the_calculated_mark_together():
    make_frames(2)
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (0, 7.5, 14.999, 15))

    drain()

    first, second = CountFrame.objects.order_by("start_time")
    assert (first.item_count, second.item_count) == (3, 1)
    assert first.calculated and first.calculated_at is not None
    assert first.analysis_time >= 0 and first.cleanup_time >= 0


class Interrupted(BaseException):
    """Stands in for a worker's time-limit interrupt (a BaseException)."""


def test_an_interrupt_is_recorded_as_a_failed_attempt_and_stops_the_run(monkeypatch):
    make_frames(3)
    original = CountFrame.calculate

    def calculate(self, stream_data):
        if self.start_time == at(15):
            raise Interrupted
        return original(self, stream_data)

    monkeypatch.setattr(CountFrame, "calculate", calculate)

    result = drain(interrupts=(Interrupted,))

    assert result.interrupted
    assert result.calculated == 1  # the newest frame, claimed first
    interrupted = CountFrame.objects.get(start_time=at(15))
    assert (interrupted.attempts, interrupted.calculated) == (1, False)
    assert "Interrupted" in interrupted.last_error
    assert not CountFrame.objects.get(start_time=at(0)).calculated  # left for the next run


def test_a_frame_locked_by_another_worker_is_skipped_not_waited_for(live_db):
    make_frames(2)
    newest = CountFrame.objects.select_for_update().filter(start_time=at(15))

    with held_in_another_transaction(lambda: list(newest)):
        result = drain()

    assert result.calculated == 1
    assert list(
        CountFrame.objects.filter(calculated=True).values_list("start_time", flat=True)
    ) == [at(0)]


def test_a_run_past_its_deadline_stops_between_frames_and_leaves_the_rest_pending(monkeypatch):
    # Given a batch of 5 claimed frames, each taking longer than the whole budget
    make_frames(5)
    original = CountFrame.calculate

    def slow(self, stream_data):
        time.sleep(0.2)
        return original(self, stream_data)

    monkeypatch.setattr(CountFrame, "calculate", slow)

    # When a run with a 0.1 s budget claims them all in one batch
    result = calculation.calculate_due_frames(
        CountFrame, deadline=time.monotonic() + 0.1, batch_size=5
    )

    # Then it calculated one frame, said more are due, and the other four wait, unlocked
    assert (result.calculated, result.more_due) == (1, True)
    assert CountFrame.objects.filter(calculated=True).count() == 1
    assert drain().calculated == 4
