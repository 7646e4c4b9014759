"""AGGREGATES frames and batch reads, in process, against real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from stream_analysis import calculation
from stream_analysis.calculation import DrainResult
from tests.batch_data import create_frames, expected, random_readings, results, truth
from tests.testapp.models import (
    ArraySqlFrame,
    BatchReadFrame,
    FragileSqlFrame,
    KeptSqlFrame,
    PythonFrame,
    Reading,
    SqlFrame,
)

pytestmark = pytest.mark.django_db

#: Not on any 7 s grid point: the frames start 3 s past the grid (OFFSET).
FIRST = datetime(2026, 3, 29, 0, 59, 58, 123456, tzinfo=UTC)


def drain(frame_class: Any, **kwargs: Any) -> DrainResult:
    return calculation.calculate_due_frames(frame_class, deadline=time.monotonic() + 60, **kwargs)


def approx(table: dict[datetime, dict[str, Any]]) -> dict[datetime, dict[str, Any]]:
    return {
        start: {k: pytest.approx(v) if isinstance(v, float) else v for k, v in row.items()}
        for start, row in table.items()
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_aggregates_give_what_calculate_gives_and_what_is_true_for_every_frame(seed, settings):
    # Given random readings over 300 frames of 7 s shifted by 3 s, Django's time zone
    # 5:45 off UTC (Django keeps the database session in UTC), and three frame classes
    settings.TIME_ZONE = "Asia/Kathmandu"
    readings = random_readings(
        seed, first=FIRST, frames=300, duration=SqlFrame.DURATION, offset=SqlFrame.OFFSET
    )
    Reading.objects.bulk_create(readings)
    planned = {}
    for frame_class in (SqlFrame, PythonFrame, BatchReadFrame):
        planned[frame_class] = create_frames(frame_class, FIRST, 300)
    # When each is drained in batches that cut the frames into uneven pieces
    drain(SqlFrame, batch_size=97)
    drain(PythonFrame)
    drain(BatchReadFrame, batch_size=41)
    # Then every frame of each equals the truth (empty frames: SQL's empty group)
    true = truth(readings, SqlFrame.DURATION, SqlFrame.OFFSET)
    starts = [planned[SqlFrame].first + i * SqlFrame.DURATION for i in range(300)]
    wanted = approx({start: true.get(start, expected([])) for start in starts})
    assert sum(1 for s in starts if s not in true) > 10  # empty frames were there
    for frame_class in (SqlFrame, PythonFrame, BatchReadFrame):
        assert results(frame_class) == wanted, frame_class.__name__
        assert not frame_class.unfinished_frames().exists()


def test_an_aggregates_batch_is_claimed_and_filled_with_three_statements():
    create_frames(SqlFrame, FIRST, 500)
    Reading.objects.bulk_create(
        random_readings(
            4, first=FIRST, frames=500, duration=SqlFrame.DURATION, offset=SqlFrame.OFFSET
        )
    )
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        result = DrainResult()
        calculation.calculate_batch(SqlFrame, result, batch_size=1000)
    assert result.calculated == 500
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))
    ]
    # the claim, the empty-group values, the one UPDATE
    assert len(statements) == 3, statements


def test_an_aggregates_frame_gets_timings_the_calculated_mark_and_an_attempt():
    create_frames(SqlFrame, FIRST, 3)
    before = datetime.now(UTC)
    drain(SqlFrame)
    for frame in SqlFrame.objects.all():
        assert frame.calculated and not frame.failed
        assert frame.attempts == 1 and frame.next_attempt_at is None and frame.last_error == ""
        assert frame.calculated_at >= before - timedelta(seconds=1)
        assert frame.analysis_time is not None and frame.analysis_time >= 0
        assert frame.cleanup_time == 0


def test_a_modelstream_queryset_filter_is_what_aggregates_read():
    readings = random_readings(
        5, first=FIRST, frames=50, duration=SqlFrame.DURATION, offset=SqlFrame.OFFSET
    )
    Reading.objects.bulk_create(readings)
    create_frames(KeptSqlFrame, FIRST, 50)
    drain(KeptSqlFrame)
    kept = [r for r in readings if r.tag == "keep"]
    true = truth(kept, SqlFrame.DURATION, SqlFrame.OFFSET)
    got = results(KeptSqlFrame)
    assert got == approx({start: true.get(start, expected([])) for start in got})
    assert sum(row["reading_count"] for row in got.values()) == len(kept) < len(readings)


def test_a_failing_aggregates_batch_is_run_frame_by_frame_and_only_the_bad_frame_fails():
    # Given 20 frames, one of which holds a reading of value 0 (100 / 0 fails)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    create_frames(FragileSqlFrame, start, 20)
    Reading.objects.bulk_create(
        Reading(taken_at=start + timedelta(seconds=10 * i + 1), value=0 if i == 7 else 5)
        for i in range(20)
    )
    # When the batch is drained
    result = drain(FragileSqlFrame)
    # Then 19 frames are calculated and the bad one records its attempt and traceback
    assert (result.calculated, result.retrying, result.failed) == (19, 1, 0)
    bad = FragileSqlFrame.objects.get(calculated=False)
    assert bad.start_time == start + timedelta(seconds=70)
    assert bad.attempts == 1 and bad.next_attempt_at is not None
    assert "division by zero" in bad.last_error
    assert set(
        FragileSqlFrame.objects.filter(calculated=True).values_list("inverse_sum", flat=True)
    ) == {20}


def test_a_postgresql_aggregate_fills_an_array_field_and_an_empty_frame_gets_null():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    create_frames(ArraySqlFrame, start, 3)
    Reading.objects.bulk_create(
        Reading(taken_at=start + timedelta(seconds=s), value=v)
        for s, v in ((0, 5), (3, -2), (9.5, 7), (25, 1))
    )

    drain(ArraySqlFrame)

    got = dict(ArraySqlFrame.objects.values_list("start_time", "values"))
    assert got == {
        start: [-2, 5, 7],
        start + timedelta(seconds=10): None,
        start + timedelta(seconds=20): [1],
    }


def test_aggregates_on_a_stream_that_is_not_a_modelstream_is_a_configuration_error(monkeypatch):
    from stream_analysis import ConfigurationError
    from tests.testapp.models import ItemStream

    monkeypatch.setattr(SqlFrame, "STREAM_CLASS", ItemStream)
    create_frames(SqlFrame, FIRST, 2)

    with pytest.raises(ConfigurationError, match="needs a ModelStream"):
        drain(SqlFrame)
    assert SqlFrame.unfinished_frames().count() == 2  # nothing claimed for good, nothing lost
