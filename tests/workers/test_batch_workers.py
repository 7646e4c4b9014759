"""The batch path with real worker processes: equivalence end to end, and SIGKILL mid-batch."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest
from django.db import connection

from actors import tasks
from stream_analysis import grid
from tests.batch_data import create_frames, expected, random_readings, results, truth
from tests.batch_settings import BATCH_TASKS
from tests.conftest import wait_until
from tests.testapp.models import BatchReadFrame, PythonFrame, Reading, SlowSqlFrame, SqlFrame

pytestmark = pytest.mark.workers
FIRST = datetime(2026, 5, 1, 12, 0, 0, 654321, tzinfo=UTC)
SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.batch_settings"}


@pytest.fixture(autouse=True)
def batch_tasks(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = BATCH_TASKS


def done(frame_class) -> int:
    return frame_class.objects.filter(calculated=True).count()


def test_aggregates_and_batch_reads_drained_by_a_real_worker_give_the_truth(workers):
    # Given 1,500 frames of random readings, and one reading far later that closes them
    frames = 1_500
    readings = random_readings(
        21, first=FIRST, frames=frames, duration=SqlFrame.DURATION, offset=SqlFrame.OFFSET
    )
    closing = Reading(taken_at=FIRST + SqlFrame.DURATION * (frames + 2), value=0)
    Reading.objects.bulk_create([*readings, closing])
    workers.start(processes=1, threads=2, **SETTINGS)

    # When the coordinator of each task ticks
    for key in ("sql", "python", "batch_read"):
        tasks.coordinate.send(key)

    # Then every frame of each class is calculated, and equals the truth
    wanted = truth(readings, SqlFrame.DURATION, SqlFrame.OFFSET)
    earliest = min(reading.taken_at for reading in readings)
    first = grid.frame_start(earliest, SqlFrame.DURATION, SqlFrame.OFFSET)
    count = (grid.frame_start(closing.taken_at, SqlFrame.DURATION, SqlFrame.OFFSET) - first) // (
        SqlFrame.DURATION
    )
    for frame_class in (SqlFrame, PythonFrame, BatchReadFrame):
        wait_until(lambda c=frame_class: done(c) == count, 120, f"{count} {frame_class.__name__}")
        got = results(frame_class)
        assert min(got) == first and len(got) == count
        for start, row in got.items():
            want = wanted.get(start, expected([]))
            approx = {k: pytest.approx(v) if isinstance(v, float) else v for k, v in want.items()}
            assert row == approx, (frame_class.__name__, start)


SLOW = """CREATE OR REPLACE FUNCTION testapp_slow_value(v integer) RETURNS integer
LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(%s); RETURN v; END $$"""


def set_slowness(seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute(SLOW % float(seconds))


def running_updates() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            "AND query LIKE '%%UPDATE \"testapp_slowsqlframe\" AS target%%' "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_a_worker_killed_mid_aggregates_batch_leaves_no_frame_half_written(workers):
    # Given 3,000 frames of one reading each, whose AGGREGATES take 2 ms a row
    set_slowness(0.002)
    starts = create_frames(SlowSqlFrame, FIRST, 3_000)
    Reading.objects.bulk_create(
        Reading(taken_at=starts.first + i * SlowSqlFrame.DURATION, value=i) for i in range(3_000)
    )
    worker = workers.start(processes=1, threads=1, **SETTINGS)
    tasks.calculate.send("slow_sql")

    # When the worker is SIGKILLed while its batch statement runs
    wait_until(running_updates, 60, "the batch UPDATE to run")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(10)

    # Then no frame was written, not even after the orphaned statement ended
    assert done(SlowSqlFrame) == 0
    wait_until(lambda: not running_updates(), 60, "the orphaned statement to end")
    untouched = SlowSqlFrame.objects.filter(reading_count=0, total=None, attempts=0)
    assert untouched.count() == 3_000 and done(SlowSqlFrame) == 0

    # And a new worker calculates every frame exactly once, with the right values
    set_slowness(0)
    workers.start(processes=1, threads=2, **SETTINGS)
    tasks.calculate.send("slow_sql")
    wait_until(lambda: done(SlowSqlFrame) == 3_000, 120, "3,000 calculated frames")
    rows = SlowSqlFrame.objects.order_by("start_time").values_list(
        "reading_count", "total", "attempts"
    )
    assert list(rows) == [(1, i, 1) for i in range(3_000)]
