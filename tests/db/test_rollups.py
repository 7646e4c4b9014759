"""Rollups: 15 s frames of arrivals, summed per minute (MinuteRollup), then per hour (HourRollup).

Ticks and calculations run in process on the real database, level by level,
as the coordinator and the workers would.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core import checks
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import stream_analysis
from stream_analysis import FrameStream, calculation, coordinator, operations, status
from stream_analysis.models import AnalysisTask
from stream_analysis.rollup_checks import check_rollup, check_source_indexes
from tests.conftest import T0, at, wait_until
from tests.testapp.models import (
    Arrival,
    Behaviour,
    FifteenFrame,
    HourRollup,
    HourSqlRollup,
    MinuteRollup,
    MinuteSqlRollup,
)

pytestmark = pytest.mark.django_db
#: The rollups twice: by calculate() and by AGGREGATES (the same counts, summed in SQL).
LEVELS = (FifteenFrame, MinuteRollup, HourRollup, MinuteSqlRollup, HourSqlRollup)
KEYS = {
    FifteenFrame: "fifteen",
    MinuteRollup: "minute_rollup",
    HourRollup: "hour_rollup",
    MinuteSqlRollup: "minute_sql_rollup",
    HourSqlRollup: "hour_sql_rollup",
}


@pytest.fixture(autouse=True)
def rollup_tasks(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        key: {"name": key, "frame_class_path": f"tests.testapp.models.{cls.__name__}"}
        for cls, key in KEYS.items()
    }
    for key in settings.ANALYSIS_TIME_FRAME_TASKS.values():
        key["autostart"] = True
    settings.STREAM_ANALYSIS_ARRIVAL_SETTLE = 0.05
    # The commit margin of a recalculated source frame: TIME_BUDGET + FRAME_TIME_LIMIT.
    settings.STREAM_ANALYSIS_TIME_BUDGET = 0.02
    settings.STREAM_ANALYSIS_FRAME_TIME_LIMIT = 0.03
    settings.STREAM_ANALYSIS_MAX_ATTEMPTS = 1


def tick(frame_class) -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require(KEYS[frame_class]), count_limit=100_000)


def calculate(frame_class) -> calculation.DrainResult:
    return calculation.calculate_due_frames(
        frame_class, deadline=time.monotonic() + 60, batch_size=500
    )


def run_all_levels() -> None:
    """Tick and calculate each level in turn, finest first, until no level has work."""
    for _ in range(10):
        work = 0
        for frame_class in LEVELS:
            result = tick(frame_class)
            work += result.created + result.recomputed + calculate(frame_class).calculated
        if not work:
            return
    pytest.fail("the levels did not settle in 10 rounds")


def arrive(*moments: datetime, ago: float = 0) -> None:
    """Items at these stream times, arrived ``ago`` seconds ago."""
    arrived = timezone.now() - timedelta(seconds=ago)
    Arrival.objects.bulk_create(Arrival(created_at=m, ingested_at=arrived) for m in moments)


def load(*moments: datetime) -> None:
    """The stream before the first tick. Arrived a second ago, so that no item counts as late:
    one arriving less than ARRIVAL_SETTLE before its frame's calculation would (the
    calculation may not have seen it), and recomputes would ripple through the levels."""
    arrive(*moments, ago=1)


def counts(frame_class) -> dict[datetime, int]:
    return dict(frame_class.objects.calculated().values_list("start_time", "item_count"))


def truth(moments, width: timedelta, before: datetime) -> Counter[datetime]:
    found: Counter[datetime] = Counter()
    for moment in moments:
        if moment < before:
            found[T0 + (moment - T0) // width * width] += 1
    return found


def test_minute_and_hour_rollups_equal_the_counts_of_the_raw_items_over_random_data():
    rng = random.Random(11)
    # Three hours and a bit of items, denser in places, with empty stretches
    moments = [at(rng.uniform(0, 3 * 3600)) for _ in range(3000)]
    moments += [at(rng.uniform(1800, 1900)) for _ in range(500)]
    moments = [m for m in moments if not at(4000) <= m < at(4400)]
    load(*moments, at(3 * 3600 + 60))

    run_all_levels()

    minutes, hours = counts(MinuteRollup), counts(HourRollup)
    assert len(hours) == 3 and len(minutes) == 181
    for got, width in ((minutes, timedelta(minutes=1)), (hours, timedelta(hours=1))):
        expected = truth(moments, width, before=max(got) + width)
        assert {start: n for start, n in got.items() if n} == dict(expected)
    assert HourRollup.objects.get(start_time=at(0)).frames == 60
    # AGGREGATES rollups give what calculate() gives, empty minutes included
    assert counts(MinuteSqlRollup) == minutes and counts(HourSqlRollup) == hours
    assert HourSqlRollup.objects.get(start_time=at(0)).frames == 60


def test_a_rollup_frame_waits_for_every_source_frame_it_covers_not_for_time():
    load(at(1), at(50), at(61))  # the 15 s frames up to 60 s close; minute [0, 60) could too
    tick(FifteenFrame)
    assert tick(MinuteRollup).created == 0  # its source frames exist but are not calculated

    calculate(FifteenFrame)
    assert tick(MinuteRollup).created == 1
    calculate(MinuteRollup)
    assert counts(MinuteRollup) == {at(0): 2}


def test_a_rollup_reads_its_watermark_in_one_statement_one_snapshot():
    # Given calculated source frames
    load(at(1), at(50), at(61), at(76))
    tick(FifteenFrame)
    calculate(FifteenFrame)
    stream = MinuteRollup.STREAM_CLASS()

    # When the rollup reads how far its stream goes, with every source frame calculated,
    # then with one more not calculated yet
    with CaptureQueriesContext(connection) as all_calculated:
        assert stream.get_latest_stream_time() == at(75)  # the newest frame's end
    FifteenFrame.objects.create(start_time=at(75))
    with CaptureQueriesContext(connection) as one_open:
        assert stream.get_latest_stream_time() == at(75)  # that frame's start

    # Then it reads each in one statement: in two (READ COMMITTED: a snapshot each),
    # frames the source's tick committed between them were passed before they were
    # calculated, and the rollup frames over them kept a wrong count (fault scenario 8
    # on RabbitMQ: 11 ten-second frames)
    assert (len(all_calculated), len(one_open)) == (1, 1)


def test_a_late_item_in_a_15_second_frame_reaches_the_hour_frame_once_per_level():
    load(*(at(s) for s in range(0, 3600, 7)), at(3600 + 60))
    run_all_levels()
    before = HourRollup.objects.get(start_time=at(0)).item_count

    # When an item for the 15 s frame at 20 min arrives after everything was calculated
    arrive(at(1200.5))
    wait_until(lambda: tick(FifteenFrame).recomputed, 10, "the late item to be seen")
    calculate(FifteenFrame)
    # Then the minute over it is recomputed, then the hour, each once
    wait_until(lambda: tick(MinuteRollup).recomputed, 10, "the recalculated 15 s frame")
    calculate(MinuteRollup)
    wait_until(lambda: tick(HourRollup).recomputed, 10, "the recalculated minute")
    calculate(HourRollup)
    time.sleep(0.2)  # past every settle and commit margin: a second marking would show now
    run_all_levels()

    hour = HourRollup.objects.get(start_time=at(0))
    minute = MinuteRollup.objects.get(start_time=at(1200))
    assert hour.item_count == before + 1

    # The AGGREGATES levels get there too, level after level, once past each commit margin
    def sql_hour_counts_it() -> bool:
        run_all_levels()
        return HourSqlRollup.objects.get(start_time=at(0)).item_count == before + 1

    wait_until(sql_hour_counts_it, 10, "the late item to reach the AGGREGATES hour")
    assert MinuteSqlRollup.objects.get(start_time=at(1200)).recomputes == 1
    assert HourSqlRollup.objects.get(start_time=at(0)).recomputes == 1
    assert (minute.runs, hour.runs) == (2, 2)
    assert (minute.recomputes, minute.recompute_reason) == (1, "late")
    assert minute.late_items == 1  # one recalculated source frame reached it
    assert MinuteRollup.objects.filter(recomputes__gt=0).count() == 1
    assert HourRollup.objects.filter(recomputes__gt=0).count() == 1


def test_an_operator_recompute_of_a_source_frame_reaches_the_rollups():
    load(*(at(s) for s in range(0, 3600, 11)), at(3600 + 60))
    run_all_levels()
    Arrival.objects.filter(created_at__gte=at(600), created_at__lt=at(615)).delete()
    lost = FifteenFrame.objects.get(start_time=at(600)).item_count
    assert lost > 0

    operations.recompute(FifteenFrame, FifteenFrame.objects.filter(start_time=at(600)))
    calculate(FifteenFrame)
    wait_until(lambda: tick(MinuteRollup).recomputed, 10, "the recalculated 15 s frame")
    calculate(MinuteRollup)
    wait_until(lambda: tick(HourRollup).recomputed, 10, "the recalculated minute")
    calculate(HourRollup)

    source = FifteenFrame.objects.get(start_time=at(600))
    assert (source.recomputes, source.recompute_reason) == (1, "recompute")
    assert counts(HourRollup)[at(0)] == sum(
        counts(FifteenFrame)[at(s)] for s in range(0, 3600, 15)
    )


def test_a_failed_source_frame_holds_the_rollup_back_and_status_names_it():
    load(*(at(s) for s in range(0, 300, 5)), at(301))
    Behaviour.objects.create(frame_start=at(135), failures=1)
    tick(FifteenFrame)
    calculate(FifteenFrame)
    assert FifteenFrame.objects.get(start_time=at(135)).status == "failed"

    tick(MinuteRollup)
    calculate(MinuteRollup)
    # Minutes 0 and 1 are complete; minute 2 holds the failed frame; 3 and 4 wait behind it
    assert sorted(counts(MinuteRollup)) == [at(0), at(60)]
    held = status.task_status(AnalysisTask.require("minute_rollup")).held_back_by
    assert held is not None and "FifteenFrame" in held and "failed" in held
    out = StringIO()
    call_command("stream_analysis", "status", "minute_rollup", stdout=out)
    assert f"minute_rollup: held back by {held}" in out.getvalue()

    operations.retry_failed(FifteenFrame)
    Behaviour.objects.all().delete()
    calculate(FifteenFrame)
    tick(MinuteRollup)
    calculate(MinuteRollup)
    assert sorted(counts(MinuteRollup)) == [at(0), at(60), at(120), at(180), at(240)]
    assert status.task_status(AnalysisTask.require("minute_rollup")).held_back_by is None


def test_a_rollup_never_deletes_its_source_frames():
    load(*(at(s) for s in range(0, 600, 3)), at(601))
    run_all_levels()
    frames = FifteenFrame.objects.count()

    stream_analysis.cleanup()

    assert FifteenFrame.objects.count() == frames
    assert FrameStream.of(FifteenFrame)().count_before(at(10_000)) == 0


def test_rollups_recompute_late_by_default_and_one_stream_class_serves_each_source():
    assert MinuteRollup.RECOMPUTE_LATE and HourRollup.RECOMPUTE_LATE
    assert FrameStream.of(FifteenFrame) is MinuteRollup.STREAM_CLASS
    assert FrameStream.of(FifteenFrame).__name__ == "FifteenFrameStream"


def fake_rollup(duration: timedelta, offset=timedelta(0), idle=None, source=FifteenFrame):
    attrs = {"DURATION": duration, "OFFSET": offset, "IDLE_TIMEOUT": idle}
    return type("BadRollup", (), {"STREAM_CLASS": FrameStream.of(source), **attrs})


@pytest.mark.parametrize(
    ("rollup", "code", "hint"),
    [
        (fake_rollup(timedelta(seconds=20)), "E041", "multiple of 0:00:15"),
        (fake_rollup(timedelta(minutes=1), timedelta(seconds=5)), "E042", "OFFSET to 0:00:00"),
        (fake_rollup(timedelta(minutes=1), idle=timedelta(minutes=1)), "E043", "IDLE_TIMEOUT"),
    ],
    ids=["duration not a multiple", "offset off the grid", "idle timeout"],
)
def test_a_rollup_that_does_not_tile_its_source_fails_the_system_check(rollup, code, hint):
    found = check_rollup(rollup, {FifteenFrame})
    assert [m.id for m in found] == [f"stream_analysis.{code}"]
    assert hint in found[0].hint


def test_a_rollup_of_a_source_without_the_base_indexes_is_warned_about():
    meta = type("Meta", (), {"indexes": [type("Index", (), {"name": "source_due"})()]})
    source = type("Source", (), {"_meta": meta})

    found = check_source_indexes(fake_rollup(timedelta(minutes=1)), source)

    assert [m.id for m in found] == ["stream_analysis.W041"]
    assert "_open, _redo" in found[0].msg
    assert check_source_indexes(MinuteRollup, FifteenFrame) == []


def test_a_rollup_of_a_source_no_task_calculates_is_warned_about():
    found = check_rollup(fake_rollup(timedelta(minutes=1)), set())
    assert [m.id for m in found] == ["stream_analysis.W040"]


def test_the_configured_rollups_pass_the_system_check():
    messages = checks.run_checks()
    assert not [m for m in messages if m.id.startswith("stream_analysis.") and m.level >= 30]
    call_command("check")  # raises SystemCheckError on an error
