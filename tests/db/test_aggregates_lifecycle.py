"""AGGREGATES frames live the life of any frame: lateness, late items, idle streams,
retries and failure, backfill, recompute and the admin's actions."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from stream_analysis import backfill, calculation, coordinator, operations
from stream_analysis.models import AnalysisTask
from tests.batch_data import expected, random_readings, results, truth
from tests.conftest import wait_until
from tests.testapp.models import FragileSqlFrame, IdleSqlFrame, LateSqlFrame, Reading, SqlFrame

pytestmark = pytest.mark.django_db
#: On the 7 s grid shifted by 3 s: a frame starts here.
T = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)
US = timedelta(microseconds=1)
TASKS = {
    cls.__name__: {
        "name": cls.__name__,
        "frame_class_path": f"tests.testapp.models.{cls.__name__}",
        "autostart": True,
    }
    for cls in (SqlFrame, LateSqlFrame, IdleSqlFrame, FragileSqlFrame)
}


@pytest.fixture(autouse=True)
def batch_tasks(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = TASKS
    settings.STREAM_ANALYSIS_ARRIVAL_SETTLE = 0.05


def tick(frame_class) -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require(frame_class.__name__), count_limit=10_000)


def calculate(frame_class) -> calculation.DrainResult:
    return calculation.calculate_due_frames(frame_class, deadline=time.monotonic() + 30)


def arrive(*moments: datetime, value: int = 1) -> None:
    Reading.objects.bulk_create(
        Reading(taken_at=m, arrived_at=timezone.now(), value=value) for m in moments
    )


def counts(frame_class) -> dict[datetime, int]:
    return dict(frame_class.objects.values_list("start_time", "reading_count"))


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


# -- lateness, late items, idle streams -------------------------------------------


def test_an_aggregates_frame_waits_for_its_lateness_and_counts_an_item_late_within_it():
    # Frame [T, T+7 s) with LATENESS 10 s closes when the stream reaches T+17 s
    arrive(at(1), at(17) - US)
    assert tick(LateSqlFrame).created == 0
    arrive(at(6.5))  # late, but within the lateness
    arrive(at(17))

    tick(LateSqlFrame)
    calculate(LateSqlFrame)

    assert counts(LateSqlFrame)[at(0)] == 2


def test_a_late_item_recomputes_its_aggregates_frame():
    arrive(at(1), at(17) + US)
    tick(LateSqlFrame)
    calculate(LateSqlFrame)
    first = LateSqlFrame.objects.get(start_time=at(0))
    assert (first.reading_count, first.attempts) == (1, 1)

    arrive(at(6.9), value=41)

    assert wait_until(lambda: tick(LateSqlFrame).recomputed, 10, "the late item") == 1
    calculate(LateSqlFrame)
    frame = LateSqlFrame.objects.get(start_time=at(0))
    assert (frame.reading_count, frame.total, frame.status) == (2, 42, "calculated")
    assert frame.calculated_at > first.calculated_at


def test_an_idle_stream_closes_its_aggregates_frames_empty_ones_included():
    now = timezone.now()
    arrive(now - timedelta(seconds=120))
    tick(IdleSqlFrame)
    task = AnalysisTask.require("IdleSqlFrame")
    AnalysisTask.objects.filter(pk=task.pk).update(
        stream_latest_seen_at=timezone.now() - timedelta(seconds=31)
    )

    tick(IdleSqlFrame)
    calculate(IdleSqlFrame)

    frames = list(IdleSqlFrame.objects.order_by("start_time"))
    assert len(frames) > 10 and all(f.calculated for f in frames)
    assert frames[0].reading_count == 1
    assert {(f.reading_count, f.total, f.total_or_zero) for f in frames[1:]} == {(0, None, 0)}


# -- retries and failure -------------------------------------------------------------


def fragile(bad: int) -> None:
    """10 frames of FragileSqlFrame, one reading each; frame ``bad`` reads a 0."""
    FragileSqlFrame.objects.bulk_create(FragileSqlFrame(start_time=at(10 * i)) for i in range(10))
    Reading.objects.bulk_create(
        Reading(taken_at=at(10 * i), value=0 if i == bad else 4) for i in range(10)
    )


def test_a_failed_aggregates_frame_is_retried_after_its_backoff_and_then_succeeds():
    fragile(bad=3)
    assert calculate(FragileSqlFrame).retrying == 1
    Reading.objects.filter(value=0).update(value=5)  # the cause is fixed

    bad = FragileSqlFrame.objects.get(start_time=at(30))
    assert calculate(FragileSqlFrame).calculated == 0  # not before its backoff
    FragileSqlFrame.objects.filter(pk=bad.pk).update(
        next_attempt_at=at(0)
    )  # due (now() is the test transaction's start)
    assert calculate(FragileSqlFrame).calculated == 1

    bad.refresh_from_db()
    assert (bad.calculated, bad.attempts, bad.inverse_sum, bad.last_error) == (True, 2, 20, "")


def test_the_last_attempt_marks_an_aggregates_frame_failed_and_the_admin_retries_it(client):
    fragile(bad=5)
    FragileSqlFrame.objects.filter(start_time=at(50)).update(attempts=2)  # MAX_ATTEMPTS is 3

    result = calculate(FragileSqlFrame)

    bad = FragileSqlFrame.objects.get(start_time=at(50))
    assert (result.calculated, result.failed) == (9, 1)
    assert (bad.failed, bad.attempts) == (True, 3) and "division by zero" in bad.last_error
    assert calculate(FragileSqlFrame).calculated == 0

    # When the cause is fixed and an operator retries it in the admin
    Reading.objects.filter(value=0).update(value=10)
    client.force_login(User.objects.create_superuser("admin", "a@example.invalid", "pw"))
    client.post(
        "/admin/testapp/fragilesqlframe/",
        {"action": "retry_failed_frames", "_selected_action": [str(bad.pk)]},
    )
    assert calculate(FragileSqlFrame).calculated == 1
    bad.refresh_from_db()
    assert (bad.calculated, bad.failed, bad.inverse_sum) == (True, False, 10)


def test_the_admins_recompute_action_refills_aggregates_frames_from_the_data_now(client):
    fragile(bad=-1)
    calculate(FragileSqlFrame)
    frame = FragileSqlFrame.objects.get(start_time=at(20))
    Reading.objects.filter(taken_at=at(20)).update(value=50)

    client.force_login(User.objects.create_superuser("admin", "a@example.invalid", "pw"))
    client.post(
        "/admin/testapp/fragilesqlframe/",
        {"action": "recompute_frames", "_selected_action": [str(frame.pk)], "confirm": "yes"},
    )
    assert calculate(FragileSqlFrame).calculated == 1

    frame.refresh_from_db()
    assert (frame.inverse_sum, frame.attempts) == (2, 1)  # recompute resets the attempts
    assert set(counts(FragileSqlFrame).values()) == {1}


# -- backfill and recompute ---------------------------------------------------------------


def test_a_backfill_of_aggregates_frames_gives_the_truth_for_every_frame():
    readings = random_readings(
        11, first=T, frames=400, duration=SqlFrame.DURATION, offset=SqlFrame.OFFSET
    )
    Reading.objects.bulk_create(readings)
    created, _ = backfill.backfill(AnalysisTask.require("SqlFrame"))

    calculate(SqlFrame)

    true = truth(readings, SqlFrame.DURATION, SqlFrame.OFFSET)
    got = results(SqlFrame)
    assert len(got) == created >= 390
    for start, row in got.items():
        want = true.get(start, expected([]))
        assert row == {k: pytest.approx(v) if isinstance(v, float) else v for k, v in want.items()}


def test_recompute_of_aggregates_frames_reads_the_data_as_it_is_now():
    arrive(at(0), at(7), at(14), at(30))
    tick(SqlFrame)
    calculate(SqlFrame)
    assert counts(SqlFrame) == {at(0): 1, at(7): 1, at(14): 1, at(21): 0}
    Reading.objects.filter(taken_at=at(7)).delete()
    arrive(at(22), at(23))

    operations.recompute(SqlFrame, SqlFrame.objects.all())
    calculate(SqlFrame)

    assert counts(SqlFrame) == {at(0): 1, at(7): 0, at(14): 1, at(21): 2}
