"""The admin's chart: bucket arithmetic and bars (pure), and the bounded grouped count."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stream_analysis.admin.chart import (
    Bucket,
    bucket_starts,
    bucket_width,
    chart,
    describe,
    frame_history,
)
from tests.conftest import at
from tests.testapp.models import CountFrame, HalfPastFrame, MinuteFrame

MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("duration", "width"),
    [
        (timedelta(seconds=1), MINUTE),
        (timedelta(seconds=15), MINUTE),
        (timedelta(seconds=70), 5 * MINUTE),
        (timedelta(hours=1), timedelta(hours=1)),
        (timedelta(days=7), timedelta(days=7)),
    ],
)
def test_a_bucket_is_the_smallest_width_that_holds_a_frame(duration, width):
    assert bucket_width(duration) == width


def test_buckets_end_with_the_one_holding_the_newest_frame():
    starts = bucket_starts(at(150), MINUTE, timedelta(0), 3)

    assert starts == [at(0), at(60), at(120)]


def test_buckets_follow_the_frame_grid_offset():
    starts = bucket_starts(at(3600), timedelta(hours=1), timedelta(minutes=30), 2)

    assert starts == [at(-1800), at(1800)]


def test_each_bucket_stacks_a_bar_per_status_present_and_the_tallest_fills_the_height():
    buckets = [Bucket(at(0), done=2, failed=2), Bucket(at(60)), Bucket(at(120), pending=1)]

    drawn = chart(buckets, MINUTE, size=(300, 100))

    assert [(bar.status, bar.x, bar.y, bar.height) for bar in drawn.bars] == [
        ("done", 1, 50, 50),
        ("failed", 1, 0, 50),
        ("pending", 201, 75, 25),
    ]
    assert drawn.tallest == 4 and drawn.start == at(0) and drawn.end == at(180)


@pytest.mark.parametrize(
    ("width", "words"),
    [
        (MINUTE, "1 minute"),
        (15 * MINUTE, "15 minutes"),
        (timedelta(hours=6), "6 hours"),
        (timedelta(days=2), "2 days"),
        (timedelta(seconds=90), "90 seconds"),
        (timedelta(seconds=1), "1 second"),
    ],
)
def test_a_bucket_width_reads_as_words(width, words):
    assert describe(width) == words


def test_no_buckets_draw_nothing():
    drawn = chart([], MINUTE)

    assert drawn.bars == [] and drawn.start is None and drawn.tallest == 0


@pytest.mark.django_db
def test_the_history_counts_frames_per_bucket_and_status_including_empty_buckets():
    for seconds, calculated, failed in [(0, True, False), (15, False, True), (130, False, False)]:
        CountFrame.objects.create(start_time=at(seconds), calculated=calculated, failed=failed)
    CountFrame.objects.create(start_time=at(-3600), calculated=True)  # before the window

    buckets = frame_history(CountFrame, count=3)

    assert buckets == [
        Bucket(at(0), done=1, failed=1),
        Bucket(at(60)),
        Bucket(at(120), pending=1),
    ]


@pytest.mark.django_db
def test_buckets_in_the_database_match_the_python_grid_with_an_offset():
    HalfPastFrame.objects.create(start_time=at(1800), calculated=True)
    HalfPastFrame.objects.create(start_time=at(1800 + 3600))

    assert frame_history(HalfPastFrame, count=2) == [
        Bucket(at(1800), done=1),
        Bucket(at(1800 + 3600), pending=1),
    ]


@pytest.mark.django_db
def test_frames_not_dividing_the_bucket_land_in_the_bucket_of_their_start():
    for index in range(5):
        MinuteFrame.objects.create(start_time=at(70 * index))  # 0, 70, 140, 210, 280 s

    buckets = frame_history(MinuteFrame, count=1)

    assert buckets == [Bucket(at(0), pending=5)]


def test_the_history_of_no_frames_is_empty(db):
    assert frame_history(CountFrame) == []
