"""ModelStream: the stream interface over a model, honouring get_queryset(); batch reads."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from stream_analysis import calculation
from tests.batch_data import create_frames, expected, random_readings, results
from tests.testapp.models import (
    BatchReadFrame,
    KeptReadingStream,
    PythonFrame,
    Reading,
    ReadingStream,
)

pytestmark = pytest.mark.django_db
T = datetime(2026, 1, 1, 0, 0, 3, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def readings(*rows: tuple[float, str]) -> None:
    Reading.objects.bulk_create(
        Reading(taken_at=at(s), tag=tag, arrived_at=at(100 + s)) for s, tag in rows
    )


def test_every_method_reads_only_what_get_queryset_keeps():
    stream = KeptReadingStream()
    assert stream.is_stream_empty()
    readings((0, "x"), (1, "keep"), (2, "x"), (5, "keep"), (9, "x"))

    assert not stream.is_stream_empty()
    assert (stream.get_earliest_stream_time(), stream.get_latest_stream_time()) == (at(1), at(5))
    assert [r.taken_at for r in stream.get_stream_data(at(0), at(9))] == [at(1), at(5)]
    assert stream.count_before(at(5)) == 1
    assert sorted(stream.get_late_arrivals(at(0), at(200), at(9))) == [
        (at(1), at(101)),
        (at(5), at(105)),
    ]
    assert stream.delete_before(at(9)) == 2
    assert Reading.objects.filter(tag="x").count() == 3  # filtered out: never deleted


def test_stream_data_is_start_inclusive_end_exclusive_and_ordered_by_time():
    readings((7, ""), (0, ""), (6.999999, ""), (3, ""))
    data = ReadingStream().get_stream_data(at(0), at(7))

    assert [r.taken_at for r in data] == [at(0), at(3), at(6.999999)]
    assert data.filter(taken_at__gt=at(1)).count() == 2  # a QuerySet


def test_delete_before_keeps_the_cutoff_and_deletes_in_bounded_chunks():
    readings(*((s, "") for s in range(11)))

    class SmallChunks(ReadingStream):
        delete_chunk_size = 3

    with CaptureQueriesContext(connection) as queries:
        deleted = SmallChunks().delete_before(at(10))

    assert deleted == 10
    assert list(Reading.objects.values_list("taken_at", flat=True)) == [at(10)]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert len(deletes) == 4 and all("LIMIT 3" in sql for sql in deletes)
    assert SmallChunks().delete_before(None) == 0 and SmallChunks().count_before(None) == 0


def test_late_arrivals_need_an_arrival_field():
    class NoArrivals(ReadingStream):
        arrival_field = None

    assert ReadingStream.reports_late_arrivals() and not NoArrivals.reports_late_arrivals()
    with pytest.raises(NotImplementedError, match="get_late_arrivals"):
        NoArrivals().get_late_arrivals(at(0), at(1), at(2))


# -- batch reads ---------------------------------------------------------------------


def reads_of_readings(frame_class, **kwargs) -> int:
    """Drain ``frame_class``; the SELECTs of the readings table that calculate() caused."""
    table = Reading._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        calculation.calculate_due_frames(frame_class, deadline=time.monotonic() + 60, **kwargs)
    return sum(
        1
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and f'FROM "{table}"' in q["sql"]
        and "COUNT" not in q["sql"] and "SUM" not in q["sql"]
    )  # fmt: skip


def test_batch_reads_read_each_run_of_claimed_frames_once_and_give_the_same_results():
    rows = random_readings(
        7, first=T, frames=120, duration=PythonFrame.DURATION, offset=PythonFrame.OFFSET
    )
    Reading.objects.bulk_create(rows)
    for frame_class in (PythonFrame, BatchReadFrame):
        create_frames(frame_class, T, 120)
    # a gap in the claimed frames: two runs in the batch
    BatchReadFrame.objects.filter(start_time=at(7 * 50)).update(calculated=True)
    PythonFrame.objects.filter(start_time=at(7 * 50)).update(calculated=True)

    per_frame = reads_of_readings(PythonFrame, batch_size=200)
    batched = reads_of_readings(BatchReadFrame, batch_size=200)

    assert (per_frame, batched) == (119, 2)
    assert results(BatchReadFrame) == results(PythonFrame)


def test_batch_reads_hold_at_most_the_row_bound_and_a_bigger_frame_reads_itself(settings):
    # Given 3 frames of 4, 9 and 2 readings, and a bound of 5 rows per read
    settings.STREAM_ANALYSIS_BATCH_READ_MAX_ROWS = 5
    layout = {0: 4, 1: 9, 2: 2}
    readings(*((7 * frame + k * 0.5, "") for frame, n in layout.items() for k in range(n)))
    create_frames(BatchReadFrame, T, 3)

    reads = reads_of_readings(BatchReadFrame)

    # Then the read for frame 2 and down stops inside frame 1 (frame 2 is served), the read
    # for frame 1 and down holds only frame 1's first 5 (so frame 1 reads itself, as
    # without batch reads), and one read serves frame 0
    assert reads == 4
    got = results(BatchReadFrame)
    assert [got[at(7 * f)]["reading_count"] for f in layout] == [4, 9, 2]
    assert got[at(0)] == pytest.approx(expected(list(Reading.objects.filter(taken_at__lt=at(7)))))


def test_a_failing_calculate_in_a_batch_read_batch_fails_alone_and_the_others_are_stored():
    # Given 10 frames of 2 readings each, and a reading in frame 4 that makes calculate() raise
    readings(*((7 * f + k, "boom" if (f, k) == (4, 1) else "") for f in range(10) for k in (0, 1)))
    create_frames(BatchReadFrame, T, 10)

    result = calculation.calculate_due_frames(BatchReadFrame, deadline=time.monotonic() + 30)

    # Then the batch ran again frame by frame: 9 stored, the bad one records its attempt
    assert (result.calculated, result.retrying) == (9, 1)
    bad = BatchReadFrame.objects.get(calculated=False)
    assert bad.start_time == at(28) and bad.attempts == 1
    assert "a 'boom' reading" in bad.last_error
    counts = set(
        BatchReadFrame.objects.filter(calculated=True).values_list("reading_count", "attempts")
    )
    assert counts == {(2, 1)}


def test_an_interrupt_in_a_batch_read_batch_counts_one_attempt_and_releases_the_rest():
    # Given 10 frames, the calculate() of frame 4 raising what the caller treats as an interrupt
    readings(*((7 * f, "boom" if f == 4 else "") for f in range(10)))
    create_frames(BatchReadFrame, T, 10)

    result = calculation.calculate_due_frames(
        BatchReadFrame, deadline=time.monotonic() + 30, interrupts=(RuntimeError,)
    )

    # Then the run stops; the interrupted frame records an attempt, the others stay pending
    assert result.interrupted and (result.calculated, result.retrying) == (0, 1)
    attempts = dict(BatchReadFrame.objects.values_list("start_time", "attempts"))
    assert attempts == {at(7 * f): int(f == 4) for f in range(10)}
    assert not BatchReadFrame.objects.filter(calculated=True).exists()
