"""The pure arithmetic of frames: no database, milliseconds per test."""

from __future__ import annotations

import os
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from stream_analysis.exceptions import StreamError
from stream_analysis.grid import (
    FrameRange,
    backfill_frames,
    combine_cutoffs,
    frame_start,
    frames_to_create,
    idle_watermark,
    late_frame_starts,
    lock_key,
    memory_cutoff,
    next_close,
    retry_delay,
)
from tests.conftest import T0, at

S15 = timedelta(seconds=15)
S70 = timedelta(seconds=70)
H1 = timedelta(hours=1)
PARIS = ZoneInfo("Europe/Paris")
DURATIONS = [
    timedelta(seconds=1),
    timedelta(seconds=7),
    S15,
    timedelta(seconds=45),
    S70,
    timedelta(seconds=90),
    timedelta(minutes=1),
    timedelta(hours=1),
    timedelta(days=1),
]


def utc(*args: int, **kwargs: int) -> datetime:
    return datetime(*args, **kwargs, tzinfo=UTC)


def offset(hours: int, minutes: int = 0) -> timezone:
    return timezone(timedelta(hours=hours, minutes=minutes))


def epoch(seconds: float) -> datetime:
    """An instant ``seconds`` after the Unix epoch, built without stream_analysis."""
    return utc(1970, 1, 1) + timedelta(seconds=seconds)


# -- frame_start ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "moment", "expected"),
    [
        # 15 s frames start at :00 :15 :30 :45 of every minute.
        (S15, utc(2026, 3, 5, 12, 34, 56), utc(2026, 3, 5, 12, 34, 45)),
        (S15, utc(2026, 3, 5, 12, 34, 7), utc(2026, 3, 5, 12, 34, 0)),
        (S15, utc(2026, 3, 5, 12, 34, 15), utc(2026, 3, 5, 12, 34, 15)),
        (S15, utc(2026, 3, 5, 12, 34, 29, 999999), utc(2026, 3, 5, 12, 34, 15)),
        (S15, utc(2026, 3, 5, 12, 34, 30), utc(2026, 3, 5, 12, 34, 30)),
        # DURATIONs that do not divide a minute count from the epoch, not the minute.
        (timedelta(seconds=7), epoch(20), epoch(14)),
        (timedelta(seconds=7), epoch(21), epoch(21)),
        (timedelta(seconds=7), at(6), at(0)),
        (timedelta(seconds=7), at(-1), at(-7)),
        (timedelta(seconds=45), epoch(100), epoch(90)),
        (timedelta(seconds=45), at(44.5), at(0)),
        (timedelta(seconds=45), at(-0.5), at(-45)),
        (S70, epoch(139.9), epoch(70)),
        (S70, epoch(140), epoch(140)),
        (S70, at(69), at(0)),
        (S70, at(71), at(70)),
        (timedelta(seconds=90), at(179), at(90)),
        (timedelta(seconds=90), at(180), at(180)),
        (timedelta(hours=1), utc(2026, 3, 5, 12, 59, 59), utc(2026, 3, 5, 12)),
        (timedelta(hours=1), at(5000), at(3600)),
        (timedelta(days=1), utc(2026, 3, 5, 23, 59, 59, 999999), utc(2026, 3, 5)),
        (timedelta(days=1), at(-1), at(-86400)),
        # Before the epoch, still the previous multiple (floor, not truncation).
        (S15, epoch(-1), epoch(-15)),
    ],
)  # fmt: skip
def test_frame_start_is_the_previous_multiple_of_the_duration_since_the_epoch(
    duration, moment, expected
):
    assert frame_start(moment, duration) == expected


@pytest.mark.parametrize("duration", DURATIONS, ids=str)
@pytest.mark.parametrize(
    "moment",
    [
        epoch(0),
        epoch(1),
        at(0),
        at(0.000001),
        at(13.5),
        at(-0.000001),
        utc(2026, 7, 14, 3, 2, 1, 123456),
        utc(1999, 12, 31, 23, 59, 59, 999999),
    ],
)
def test_the_frame_of_a_moment_contains_it_and_starts_on_a_multiple(moment, duration):
    start = frame_start(moment, duration)

    assert start <= moment < start + duration
    assert (start - epoch(0)) % duration == timedelta(0)
    assert start.utcoffset() == timedelta(0)
    assert frame_start(start, duration) == start


@pytest.mark.parametrize(
    ("duration", "moment", "expected_utc"),
    [
        # 01:00:07 at UTC+1 is 00:00:07 UTC.
        (S15, datetime(2026, 1, 1, 1, 0, 7, tzinfo=offset(1)), at(0)),
        # 06:10 at UTC+05:30 is 00:40 UTC: the hour frame is 00:00 UTC, not 06:00 local.
        (timedelta(hours=1), datetime(2026, 1, 1, 6, 10, tzinfo=offset(5, 30)), at(0)),
        # 00:30 at UTC+2 on Jan 1st is still Dec 31st in UTC.
        (timedelta(days=1), datetime(2026, 1, 1, 0, 30, tzinfo=offset(2)), at(-86400)),
        (timedelta(days=1), datetime(2025, 12, 31, 20, tzinfo=offset(-5)), at(0)),
        # The repeated hour when Paris leaves summer time: fold picks the instant.
        (H1, datetime(2026, 10, 25, 2, 30, tzinfo=PARIS), utc(2026, 10, 25, 0)),
        (H1, datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS), utc(2026, 10, 25, 1)),
    ],
)  # fmt: skip
def test_an_aware_datetime_in_another_zone_lands_in_its_utc_frame(duration, moment, expected_utc):
    start = frame_start(moment, duration)

    assert start == expected_utc
    assert start.tzinfo == UTC


def test_a_naive_datetime_is_rejected_with_a_hint():
    with pytest.raises(StreamError, match="naive"):
        frame_start(datetime(2026, 1, 1, 0, 0, 7), S15)


@pytest.mark.parametrize("moment", [date(2026, 1, 1), "2026-01-01T00:00:00Z", 1767225600])
def test_something_that_is_not_a_datetime_is_rejected(moment):
    with pytest.raises(StreamError, match="must be a datetime"):
        frame_start(moment, S15)


# -- due_frames ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "earliest", "latest", "newest", "expected"),
    [
        # [0, 15) and [15, 30) are closed at 44 s; [30, 45) is not.
        (S15, at(3), at(44), None, (at(0), at(15))),
        # The stream's clock reaching a frame's end closes it.
        (S15, at(3), at(45), None, (at(0), at(30))),
        (S15, at(0), at(15), None, (at(0), at(0))),
        # Nothing closed yet.
        (S15, at(1), at(14.999999), None, None),
        (S15, at(0), at(0), None, None),
        # One item exactly on a boundary opens the frame that starts there.
        (S15, at(15), at(15), None, None),
        (S15, at(15), at(30), None, (at(15), at(15))),
        # Creation continues after the newest existing frame.
        (S15, at(0), at(61), at(15), (at(30), at(45))),
        (S15, at(0), at(61), at(30), (at(45), at(45))),
        (S15, at(0), at(61), at(45), None),
        (S15, at(0), at(61), at(300), None),
        # An existing frame older than the stream (its data was deleted): start at the stream.
        (S15, at(30), at(61), at(-60), (at(30), at(45))),
        # Ticks that stopped for an hour: every frame closed since is created at once.
        (S15, at(0), at(3600), at(3540), (at(3555), at(3585))),
        # DURATIONs that do not divide a minute.
        (S70, at(10), at(139), None, (at(0), at(0))),
        (S70, at(10), at(140), None, (at(0), at(70))),
        (timedelta(seconds=7), at(-3), at(20), None, (at(-7), at(7))),
        (timedelta(days=1), at(3600), at(2 * 86400 + 1), None, (at(0), at(86400))),
    ],
)  # fmt: skip
def test_due_frames_are_every_closed_frame_not_yet_created(
    duration, earliest, latest, newest, expected
):
    planned = frames_to_create(
        duration=duration, earliest=earliest, latest=latest, newest_existing_start=newest
    )

    if expected is None:
        assert planned is None
    else:
        assert (planned.first, planned.last, planned.duration) == (*expected, duration)


def test_a_frame_range_counts_its_frames_and_knows_where_it_ends():
    planned = FrameRange(first=at(0), last=at(45), duration=S15)

    assert planned.count == 4
    assert planned.end == at(60)
    assert FrameRange(first=at(70), last=at(70), duration=S70).count == 1


def test_due_frames_accept_stream_times_in_any_zone():
    planned = frames_to_create(
        duration=S15,
        earliest=at(3).astimezone(PARIS),
        latest=at(31).astimezone(PARIS),
        newest_existing_start=None,
    )

    assert (planned.first, planned.last) == (at(0), at(15))
    assert planned.first.tzinfo == UTC


def test_a_latest_time_before_the_earliest_is_a_stream_error():
    with pytest.raises(StreamError, match="before get_earliest_stream_time"):
        frames_to_create(duration=S15, earliest=at(30), latest=at(29), newest_existing_start=None)


@pytest.mark.parametrize("which", ["earliest", "latest"])
def test_a_naive_stream_time_is_a_stream_error_naming_the_method(which):
    times = {"earliest": at(0), "latest": at(60)}
    times[which] = times[which].replace(tzinfo=None)

    with pytest.raises(StreamError, match=f"get_{which}_stream_time"):
        frames_to_create(duration=S15, newest_existing_start=None, **times)


# -- backfill_frames -------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration", "earliest", "latest", "expected"),
    [
        (S15, at(3), at(50), (at(0), at(30))),
        (S15, at(0), at(15), (at(0), at(0))),
        (S15, at(3), at(14), None),
        (S70, at(-1), at(140), (at(-70), at(70))),
    ],
)  # fmt: skip
def test_backfill_covers_every_closed_frame_from_the_earliest_item(
    duration, earliest, latest, expected
):
    planned = backfill_frames(duration=duration, earliest=earliest, latest=latest)

    if expected is None:
        assert planned is None
    else:
        assert (planned.first, planned.last) == expected


def test_backfill_ignores_frames_that_already_exist():
    backfill = backfill_frames(duration=S15, earliest=at(0), latest=at(61))
    due = frames_to_create(
        duration=S15, earliest=at(0), latest=at(61), newest_existing_start=at(30)
    )

    assert (backfill.first, backfill.last) == (at(0), at(45))
    assert (due.first, due.last) == (at(45), at(45))


def test_backfill_rejects_a_latest_time_before_the_earliest():
    with pytest.raises(StreamError):
        backfill_frames(duration=S15, earliest=at(30), latest=at(0))


# -- cutoffs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("oldest_uncalculated", "newest_calculated", "expected"),
    [
        (at(15), at(60), at(15)),
        (at(15), None, at(15)),
        (None, at(60), at(60)),
        (None, None, None),
    ],
)
def test_the_memory_cutoff_is_the_oldest_uncalculated_frame_else_the_newest_calculated(
    oldest_uncalculated, newest_calculated, expected
):
    assert memory_cutoff(oldest_uncalculated, newest_calculated) == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], {}),
        ([("a", at(30))], {"a": at(30)}),
        ([("a", at(30)), ("a", at(15)), ("a", at(45))], {"a": at(15)}),
        ([("a", at(30)), ("b", at(15))], {"a": at(30), "b": at(15)}),
        # None (a task that needs everything) wins wherever it comes.
        ([("a", None), ("a", at(15))], {"a": None}),
        ([("a", at(15)), ("a", None)], {"a": None}),
        ([("a", at(15)), ("a", None), ("a", at(0))], {"a": None}),
        ([("a", None), ("b", at(15))], {"a": None, "b": at(15)}),
    ],
)
def test_cutoffs_combine_to_the_minimum_per_key_and_none_wins(pairs, expected):
    assert combine_cutoffs(pairs) == expected


def test_cutoffs_combine_from_any_iterable_keyed_by_class():
    class StreamA:
        pass

    class StreamB:
        pass

    pairs = ((cls, at(n)) for cls, n in [(StreamA, 30), (StreamB, 45), (StreamA, 0)])

    assert combine_cutoffs(pairs) == {StreamA: at(0), StreamB: at(45)}


# -- retry_delay -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "expected_seconds"),
    [(0, 5), (1, 5), (2, 10), (3, 20), (4, 40), (7, 320), (8, 600), (9, 600), (10_000, 600)],
)
def test_retry_delay_doubles_with_each_attempt_up_to_the_cap(attempts, expected_seconds):
    assert retry_delay(attempts, base=5.0, cap=600.0) == timedelta(seconds=expected_seconds)


def test_retry_delay_keeps_fractions_of_a_second():
    assert retry_delay(3, base=0.2, cap=600.0) == timedelta(seconds=0.8)


# -- lock_key ----------------------------------------------------------------------

KEYS = [("tick", key) for key in ["counts", "flaky", "minutely", "", "a" * 200, "ключ"]]


@pytest.mark.parametrize("parts", KEYS, ids=repr)
def test_a_lock_key_is_a_signed_64_bit_integer(parts):
    key = lock_key(*parts)

    assert isinstance(key, int)
    assert -(2**63) <= key < 2**63


def test_lock_keys_use_the_whole_signed_range():
    keys = [lock_key("tick", str(n)) for n in range(64)]

    assert any(k < 0 for k in keys)
    assert any(k > 2**31 for k in keys)  # beyond pg's integer: bigint is needed


def test_lock_keys_differ_per_key_and_per_part_boundary():
    keys = [lock_key(*parts) for parts in KEYS]
    keys.append(lock_key("calculate", "counts"))
    keys.append(lock_key("tickcounts"))
    keys.append(lock_key("tick", "count", "s"))

    assert len(set(keys)) == len(keys)


def test_a_lock_key_is_the_same_in_another_process(processes):
    # Another process has another str hash seed: a key from hash() would differ.
    code = "from stream_analysis.grid import lock_key; print(lock_key('tick', 'counts'))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}

    out = processes.run([sys.executable, "-c", code], env=env)

    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == lock_key("tick", "counts")


def test_t0_is_aligned_to_every_duration_these_tests_use():
    # The expectations above use at(); they hold only if T0 starts a frame of each.
    for duration in DURATIONS:
        assert (T0 - epoch(0)) % duration == timedelta(0)


# -- event time: offset, lateness, idle, late arrivals -----------------------------------

US = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (utc(2026, 1, 1, 10, 29, 59), utc(2026, 1, 1, 9, 30)),
        (utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 10, 30)),
        (utc(2026, 1, 1, 11, 0), utc(2026, 1, 1, 10, 30)),
    ],
)
def test_an_offset_shifts_the_grid(moment, expected):
    assert frame_start(moment, H1, timedelta(minutes=30)) == expected


@pytest.mark.parametrize(
    ("latest", "closed"),
    [(at(25) - US, 0), (at(25), 1), (at(40) - US, 1), (at(40), 2)],
    ids=["a microsecond short", "exactly end + lateness", "just short of the next", "next"],
)
def test_a_frame_closes_once_the_stream_passes_its_end_by_the_lateness(latest, closed):
    planned = frames_to_create(
        duration=S15,
        earliest=at(0),
        latest=latest,
        newest_existing_start=None,
        lateness=timedelta(seconds=10),
    )
    assert (planned.count if planned else 0) == closed


def test_next_close_accounts_for_lateness_and_offset():
    assert next_close(at(26), S15, lateness=timedelta(seconds=10)) == at(40)
    assert next_close(at(26), S15, offset=timedelta(seconds=5)) == at(35)


def test_the_watermark_follows_the_stream_until_it_is_idle_for_the_timeout():
    now = utc(2026, 6, 1, 12)
    latest = now - timedelta(minutes=5)
    idle = timedelta(seconds=30)

    assert idle_watermark(latest, now - timedelta(seconds=29), now, idle) == latest
    assert idle_watermark(latest, now - timedelta(seconds=30), now, idle) == now
    assert idle_watermark(latest, now - timedelta(hours=1), now, None) == latest
    assert idle_watermark(latest, None, now, idle) == latest


def test_late_arrivals_are_grouped_by_frame_with_their_last_arrival():
    arrivals = [
        (at(1), utc(2026, 2, 1, 0, 0, 1)),
        (at(14), utc(2026, 2, 1, 0, 0, 3)),
        (at(15), utc(2026, 2, 1, 0, 0, 2)),
        (at(2), utc(2026, 2, 1, 0, 0, 2)),
    ]

    assert late_frame_starts(arrivals, S15) == {
        at(0): utc(2026, 2, 1, 0, 0, 3),
        at(15): utc(2026, 2, 1, 0, 0, 2),
    }


def test_naive_arrival_times_are_rejected():
    with pytest.raises(StreamError, match="naive"):
        late_frame_starts([(at(1), datetime(2026, 2, 1))], S15)
