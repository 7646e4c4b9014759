"""Event time: allowed lateness, late items, idle streams, offsets and time zones.

Ticks and calculations run in process on the real database; the stream is a
table of items stamped with their event time and their arrival time.
"""

from __future__ import annotations

import itertools
import random
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from stream_analysis import StreamError, calculation, coordinator
from stream_analysis.models import AnalysisTask
from tests.conftest import T0, at, wait_until
from tests.testapp.models import Arrival, HalfPastFrame, IdleFrame, LateFrame, StrictFrame

pytestmark = pytest.mark.django_db
US = timedelta(microseconds=1)
TASKS = {
    key: {"name": key, "frame_class_path": f"tests.testapp.models.{key}", "autostart": True}
    for key in ("LateFrame", "StrictFrame", "IdleFrame", "HalfPastFrame")
}


@pytest.fixture(autouse=True)
def event_time_tasks(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = TASKS
    settings.STREAM_ANALYSIS_ARRIVAL_SETTLE = 0.05


def tick(frame_class) -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require(frame_class.__name__), count_limit=10_000)


def calculate(frame_class) -> None:
    calculation.calculate_due_frames(frame_class, deadline=time.monotonic() + 30)


def arrive(*moments: datetime) -> None:
    Arrival.objects.bulk_create(Arrival(created_at=m, ingested_at=timezone.now()) for m in moments)


def counts(frame_class) -> dict[datetime, int]:
    return dict(frame_class.objects.values_list("start_time", "item_count"))


# -- LATENESS ----------------------------------------------------------------------


@pytest.mark.parametrize("frame_class", [LateFrame, StrictFrame])
def test_a_frame_stays_open_until_the_stream_passes_its_end_by_the_lateness(frame_class):
    # Frame [0, 15 s) with LATENESS 10 s closes when the stream reaches 25 s
    arrive(at(1), at(25) - US)
    assert tick(frame_class).created == 0

    arrive(at(25))
    assert tick(frame_class).created == 1


@pytest.mark.parametrize("frame_class", [LateFrame, StrictFrame])
def test_an_item_less_than_the_lateness_late_is_counted_in_its_own_frame(frame_class):
    # The stream is at 25 s - 1 µs: frame [0, 15 s) is still open, an item for it is not lost
    arrive(at(1), at(25) - US)
    tick(frame_class)
    arrive(at(14))
    arrive(at(25))

    tick(frame_class)
    calculate(frame_class)

    assert counts(frame_class)[at(0)] == 2


def test_an_item_more_than_the_lateness_late_is_not_counted_without_recompute():
    # The stream passed 25 s: frame [0, 15 s) was calculated; then an item for it arrives
    arrive(at(1), at(25) + US)
    tick(StrictFrame)
    calculate(StrictFrame)
    arrive(at(14))

    tick(StrictFrame)
    calculate(StrictFrame)

    frame = StrictFrame.objects.get(start_time=at(0))
    assert (frame.item_count, frame.runs) == (1, 1)


def test_with_recompute_late_an_item_after_its_frame_was_calculated_recomputes_it():
    arrive(at(1), at(25) + US)
    tick(LateFrame)  # the first tick starts watching arrivals
    calculate(LateFrame)
    assert counts(LateFrame)[at(0)] == 1

    # When an item for the calculated frame arrives
    arrive(at(14))

    # Then a tick (once the arrival has settled) marks the frame stale, once
    result = wait_until(lambda: tick(LateFrame).recomputed, 10, "the late item to be seen")
    assert result == 1
    assert LateFrame.objects.get(start_time=at(0)).status == "stale"
    assert tick(LateFrame).recomputed == 0  # a frame is marked at most once per arrival

    # And its recomputation replaces the old result
    calculate(LateFrame)
    frame = LateFrame.objects.get(start_time=at(0))
    assert (frame.item_count, frame.runs, frame.status) == (2, 2, "calculated")


def test_late_items_for_frames_not_yet_calculated_do_not_count_as_recomputes():
    arrive(at(1), at(100))
    tick(LateFrame)
    arrive(at(14))  # its frame exists but is still pending
    arrived = Arrival.objects.latest("ingested_at").ingested_at
    recomputed = []

    def seen() -> bool:
        recomputed.append(tick(LateFrame).recomputed)
        return AnalysisTask.require("LateFrame").late_checked_at >= arrived

    wait_until(seen, 10, "a tick that read the arrival")
    assert sum(recomputed) == 0
    calculate(LateFrame)
    frame = LateFrame.objects.get(start_time=at(0))
    assert (frame.item_count, frame.runs) == (2, 1)


def test_out_of_order_arrival_across_many_frames_is_counted_in_the_right_frames():
    # Given 60 frames' items arriving shuffled, then the watermark passing them all
    expected: dict[datetime, int] = {}
    moments = []
    for i in range(60):
        for k in range(i % 4 + 1):
            moments.append(at(15 * i + 3.5 * k))
        expected[at(15 * i)] = i % 4 + 1
    random.Random(7).shuffle(moments)
    for chunk in range(0, len(moments), 25):
        arrive(*moments[chunk : chunk + 25])
    arrive(at(15 * 60 + 10))

    tick(StrictFrame)
    calculate(StrictFrame)

    assert counts(StrictFrame) == expected


# -- IDLE_TIMEOUT --------------------------------------------------------------------


def test_an_idle_stream_closes_its_frames_by_the_wall_clock():
    # Given a live stream that stopped two minutes ago
    now = timezone.now()
    arrive(now - timedelta(seconds=120))
    tick(IdleFrame)  # the first tick sees the latest time move
    assert IdleFrame.objects.count() == 0

    # When the wall clock passes IDLE_TIMEOUT without a new item
    task = AnalysisTask.require("IdleFrame")
    AnalysisTask.objects.filter(pk=task.pk).update(
        stream_latest_seen_at=timezone.now() - timedelta(seconds=31)
    )
    tick(IdleFrame)
    calculate(IdleFrame)

    # Then every frame up to now is closed; the empty ones count zero items
    frames = list(IdleFrame.objects.order_by("start_time"))
    assert frames[0].item_count == 1
    assert {f.item_count for f in frames[1:]} == {0}
    assert frames[-1].end_time <= timezone.now() < frames[-1].end_time + 2 * IdleFrame.DURATION
    assert all(f.calculated for f in frames)


def test_a_stream_that_is_not_idle_for_long_enough_keeps_its_frames_open():
    arrive(timezone.now() - timedelta(seconds=120))
    tick(IdleFrame)
    tick(IdleFrame)  # seconds later: not idle for 30 s yet

    assert IdleFrame.objects.count() == 0


# -- OFFSET and time zones ------------------------------------------------------------


def test_hourly_frames_with_an_offset_start_at_half_past():
    arrive(datetime(2026, 1, 1, 10, 45, tzinfo=UTC), datetime(2026, 1, 1, 13, 31, tzinfo=UTC))

    tick(HalfPastFrame)

    starts = sorted(HalfPastFrame.objects.values_list("start_time", flat=True))
    assert starts == [datetime(2026, 1, 1, h, 30, tzinfo=UTC) for h in (10, 11, 12)]


def test_a_daylight_saving_change_makes_no_gap_and_no_overlap():
    # Items every 10 minutes of New York local time across the spring-forward night
    new_york = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 8, 0, 0, tzinfo=new_york)  # 05:00 UTC; clocks jump at 02:00 local
    moments = [(start.astimezone(UTC) + timedelta(minutes=10 * i)).astimezone(new_york)
               for i in range(30)]  # fmt: skip
    arrive(*moments)

    tick(HalfPastFrame)
    calculate(HalfPastFrame)

    frames = list(HalfPastFrame.objects.order_by("start_time"))
    for before, after in itertools.pairwise(frames):
        assert after.start_time - before.start_time == timedelta(hours=1)
    assert (
        sum(f.item_count for f in frames)
        == Arrival.objects.filter(created_at__lt=frames[-1].end_time).count()
    )


def test_naive_stream_times_are_an_error_naming_the_fix(monkeypatch):
    arrive(at(1), at(100))
    monkeypatch.setattr(
        "tests.testapp.models.ArrivalStream.get_latest_stream_time",
        lambda self: datetime(2026, 1, 1, 0, 1, 40),
    )

    with pytest.raises(StreamError, match="naive datetime"):
        tick(StrictFrame)


def test_aware_times_in_any_zone_land_in_their_utc_frame():
    tokyo = ZoneInfo("Asia/Tokyo")
    arrive(T0.astimezone(tokyo) + timedelta(seconds=16), at(100))

    tick(StrictFrame)
    calculate(StrictFrame)

    assert counts(StrictFrame)[at(15)] == 1
