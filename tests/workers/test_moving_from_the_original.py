"""Moving over from the original: the client's analyses run unchanged on a real worker
and a real scheduler (tests/db/test_moving_from_the_original.py: the rest).

Each row of docs/moving-from-the-original.md names the test that proves it.
The client is tests/legacy_client/, written as the original's users wrote theirs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

import stream_analysis
from tests.conftest import REPO, at, wait_until, worker_env
from tests.legacy_client import status
from tests.legacy_client.models import (
    STOP_WORDS,
    DemoTimeFrame,
    FeelingPercent,
    FeelingWord,
    MapTimeFrame,
    TimeFrame,
    TweetChunk,
)
from tests.legacy_client.stream import Tweet
from tests.legacy_client.twitter_analysis import TweetStream
from tests.legacy_tweets import MINUTES, TEXTS, write_tweets

LEGACY_SETTINGS = "tests.legacy_client.settings"
FEELINGS = ("happy", "sad", "tired")


def in_frame(tweets: list[Tweet], start, duration: timedelta) -> list[Tweet]:
    return [t for t in tweets if start <= t.created_at < start + duration]


def expected_thermometer(tweets: list[Tweet], start) -> dict:
    """What the thermometer frame at ``start`` must hold, straight from the tweets."""
    frame_tweets = in_frame(tweets, start, timedelta(minutes=1))
    originals = [t for t in frame_tweets if t.retweeted_status_id is None]
    matches = [TEXTS[t.text] for t in originals if TEXTS[t.text][0]]
    counts = Counter(feeling for _, feeling in matches)
    return {
        "total_tweets": len(frame_tweets),
        "feeling_tweets": len(matches),
        "percents": {f: (counts[f] / len(matches) if matches else 0) for f in FEELINGS},
    }


def expected_words(tweets: list[Tweet], start) -> Counter[str]:
    frame_tweets = in_frame(tweets, start, timedelta(minutes=1))
    words = (w for t in frame_tweets for w in t.text.lower().split())
    return Counter(w for w in words if w not in STOP_WORDS)


def start_scheduler(log: Path) -> subprocess.Popen[bytes]:
    """A periodiq process with the client's settings (it ticks once at start)."""
    periodiq = Path(sys.executable).parent / "periodiq"
    command = [str(periodiq), "django_dramatiq.setup", "actors.tasks", "--path", str(REPO)]
    with open(log, "wb") as out:
        return subprocess.Popen(
            command, env=worker_env(DJANGO_SETTINGS_MODULE=LEGACY_SETTINGS),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


# -- end to end: a real worker and a real scheduler ----------------------------------------


@pytest.mark.workers
def test_the_clients_analyses_run_unchanged_on_a_real_worker_and_scheduler(
    workers, legacy_tasks, tmp_path
):
    # Given the client's feelings and tweets
    FeelingWord.objects.bulk_create(FeelingWord(word=w) for w in FEELINGS)
    FeelingWord.objects.create(word="angry", untracked=True)
    tweets = write_tweets()

    # When the client starts its tasks its own way (the thermometer autostarts)
    status.schedule_task("demo", cancel_first=True)
    with pytest.warns(DeprecationWarning, match="stream_analysis start"):
        call_command("analysis_ctrl", "start", "map", stdout=StringIO(), stderr=StringIO())
    # and a worker and the scheduler run with the client's settings
    workers.start(processes=1, threads=4, DJANGO_SETTINGS_MODULE=LEGACY_SETTINGS)
    scheduler = start_scheduler(tmp_path / "periodiq.log")
    try:
        wait_until(
            lambda: (
                TimeFrame.objects.filter(calculated=True).count() == MINUTES
                and DemoTimeFrame.objects.filter(calculated=True).count() == MINUTES * 4
                and MapTimeFrame.objects.filter(calculated=True).count() == MINUTES
            ),
            130,
            "every frame of the three tasks (periodiq ticks at start, or at the next minute)",
        )
    finally:
        stop(scheduler)

    # Then every result equals what the tweets say
    for frame in TimeFrame.objects.all():
        expected = expected_thermometer(tweets, frame.start_time)
        assert (frame.total_tweets, frame.feeling_tweets) == (
            expected["total_tweets"],
            expected["feeling_tweets"],
        )
        assert frame.missing_data is False
        percents = {p.feeling.word: p.percent for p in frame.feelingpercent_set.all()}
        assert percents == pytest.approx(expected["percents"])
    assert FeelingPercent.objects.count() == MINUTES * len(FEELINGS)
    for frame in DemoTimeFrame.objects.all():
        assert frame.tweet_count == len(in_frame(tweets, frame.start_time, frame.duration))
    # (the map's calculate() wrote the words, its cleanup() dropped the stop words)
    for frame in MapTimeFrame.objects.all():
        words = TweetChunk.objects.filter(frame_start=frame.start_time)
        assert Counter(words.values_list("word", flat=True)) == expected_words(
            tweets, frame.start_time
        )
    for model in (TimeFrame, DemoTimeFrame, MapTimeFrame):
        assert not model.objects.filter(analysis_time=None).exists()
        assert not model.objects.filter(cleanup_time=None).exists()

    # And the client's status code reads the tasks as running, with their counts
    with pytest.warns(DeprecationWarning, match=r"task\.is_running"):
        report = status.task_status()
    assert {key: (r["running"], r["frame_count"]) for key, r in report.items()} == {
        "demo": (True, MINUTES * 4),
        "map": (True, MINUTES),
        "thermometer": (True, MINUTES),
    }
    assert all(r["avg_time"] is not None for r in report.values())

    # When the client queues a cleanup its own way, the worker deletes what no task needs:
    # the map keeps 2 minutes before its newest frame (its cutoff calls super())
    cutoff = at((MINUTES - 1) * 60) - MapTimeFrame.KEEP_TWEETS
    assert stream_analysis.get_stream_cutoff_times() == {TweetStream: cutoff}
    kept = Tweet.objects.filter(created_at__gte=cutoff).count()
    with pytest.warns(DeprecationWarning, match=r"cleanup_streams\.send\(\)"):
        status.clean_tweets()
    wait_until(lambda: Tweet.objects.count() == kept, 30, "the queued cleanup")
    assert not Tweet.objects.filter(created_at__lt=cutoff).exists()
