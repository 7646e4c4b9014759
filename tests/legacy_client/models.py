"""The client's analyses: a thermometer of feelings, a demo count and a word map.

Written as for the original (Python 3 and Django 5 syntax only): ``cls.objects``,
``super(Class, cls)``, ``calculate()`` returning its stream data, a
``TimedIntervalMixin`` model without ``calculated``, ``cleanup()`` and
``get_stream_memory_cutoff()`` overridden.
"""

import logging
from collections import defaultdict
from datetime import timedelta

from django.db import models

from stream_analysis import BaseTimeFrame, TimedIntervalMixin

from .stream import Tweet  # noqa: F401 - the stream's model belongs to this app
from .twitter_analysis import QuietTweetStream, TweetTimeFrame

logger = logging.getLogger("thermometer")

#: Tweets that say how someone feels: "<indicator> <feeling word>".
INDICATOR = "i feel"


class FeelingWord(models.Model):
    """
    A feeling word such as "fine" or "better" or "angry".
    """

    word = models.CharField(max_length=250)
    untracked = models.BooleanField(default=False)

    def __str__(self):
        return self.word

    @classmethod
    def get_tracked_list(cls):
        return cls.objects.filter(untracked=False).order_by("word")


class TimeFrame(TweetTimeFrame):
    """
    Analyze the percent of tweets for feeling words in this time window.
    """

    DURATION = timedelta(minutes=1)

    # The number of feeling and all tweets in the frame
    feeling_tweets = models.PositiveIntegerField(null=True, blank=True, default=None)
    total_tweets = models.PositiveIntegerField(null=True, blank=True, default=None)

    def calculate(self, stream_data):
        """
        Calculates a new time frame from collected Twitter data.
        """
        originals = stream_data.filter(retweeted_status_id=None)
        feelings = FeelingWord.get_tracked_list()
        feelings_set = set(f.word for f in feelings)

        tweet_counts_by_feeling = defaultdict(float)
        indicator_matches = 0
        for tweet in originals:
            text = tweet.text.lower()
            if INDICATOR not in text:
                continue
            indicator_matches += 1
            for token in text.split(INDICATOR, 1)[1].split():
                if token in feelings_set:
                    tweet_counts_by_feeling[token] += 1
                    break

        self.missing_data = len(originals) == 0

        feeling_counters = []
        for feeling in feelings:
            if indicator_matches > 0:
                percent = tweet_counts_by_feeling[feeling.word] / indicator_matches
            else:
                percent = 0
            feeling_counters.append(
                FeelingPercent(
                    frame=self,
                    feeling=feeling,
                    percent=percent,
                    start_time=self.start_time,
                    feeling_tweets=indicator_matches,
                    missing_data=self.missing_data,
                )
            )
        FeelingPercent.objects.bulk_create(feeling_counters)

        self.feeling_tweets = indicator_matches
        self.total_tweets = len(stream_data)
        return stream_data

    @classmethod
    def get_frames_in_interval(cls, start=None, end=None):
        """
        Gets TimeFrame data over an interval, sorted by time.
        """
        return cls.get_in_range(start=start, end=end).order_by("start_time")


class FeelingPercent(TimedIntervalMixin, models.Model):
    """
    The percent of tweets for a given feeling in a given time frame.
    """

    class Meta:
        indexes = [models.Index(fields=["start_time", "missing_data", "feeling"])]

    DURATION = TimeFrame.DURATION

    frame = models.ForeignKey(TimeFrame, on_delete=models.CASCADE)
    feeling = models.ForeignKey(
        FeelingWord, null=True, default=None, blank=True, on_delete=models.CASCADE
    )
    percent = models.FloatField(null=True, blank=True, default=None)
    missing_data = models.BooleanField(default=True)
    feeling_tweets = models.PositiveIntegerField(null=True, blank=True, default=None)

    @classmethod
    def get_average_percents(cls, start=None, end=None, feeling_ids=None):
        """
        Gets the average percentage for each feeling in an interval.
        """
        query = cls.get_in_range(start=start, end=end, feeling_ids=feeling_ids).filter(
            missing_data=False
        )
        query = query.values("feeling").annotate(models.Avg("percent")).order_by("feeling")
        return {row["feeling"]: row["percent__avg"] for row in query}

    @classmethod
    def get_in_range(cls, start=None, end=None, calculated=None, feeling_ids=None):
        """
        Get the FeelingPercents in the interval, optionally filtered by a list of feeling ids.
        """
        query = super(FeelingPercent, cls).get_in_range(start, end, calculated)
        if feeling_ids:
            query = query.filter(feeling_id__in=feeling_ids)
        return query


class DemoTimeFrame(TweetTimeFrame):
    """
    A basic time frame for demo analysis.
    """

    # Analyze every 15 seconds
    DURATION = timedelta(seconds=15)

    # Simply store the total tweet count in this time frame
    tweet_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.tweet_count = len(stream_data)
        return stream_data

    @classmethod
    def get_most_recent(cls, limit=20):
        """
        A handy static method to get the <limit> most recent frames.
        """
        query = cls.get_in_range(calculated=True).order_by("-start_time")
        return query[:limit]


#: Words the map does not keep: cleanup() removes their chunks.
STOP_WORDS = ("the", "a", "i")


class TweetChunk(models.Model):
    """A word of a tweet, kept by the map (data accumulated outside the frames)."""

    word = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    frame_start = models.DateTimeField(db_index=True)


class MapTimeFrame(TweetTimeFrame):
    """
    The words of the tweets, kept for a map; old tweets are kept a while longer.
    """

    DURATION = timedelta(seconds=60)

    #: The map keeps this much more of the stream than its frames need.
    KEEP_TWEETS = timedelta(minutes=2)

    tweet_count = models.IntegerField(default=0)

    def calculate(self, tweets):
        self.tweet_count = len(tweets)
        new_tweet_chunks = []
        for tweet in tweets:
            for word in tweet.text.lower().split():
                new_tweet_chunks.append(
                    TweetChunk(word=word, created_at=tweet.created_at, frame_start=self.start_time)
                )
        TweetChunk.objects.bulk_create(new_tweet_chunks)
        return tweets

    def cleanup(self):
        """Forget the stop words of this frame and of every older one."""
        TweetChunk.objects.filter(frame_start__lte=self.start_time, word__in=STOP_WORDS).delete()

    @classmethod
    def get_stream_memory_cutoff(cls):
        cutoff = super(MapTimeFrame, cls).get_stream_memory_cutoff()
        if cutoff is None:
            return None
        return cutoff - cls.KEEP_TWEETS


class QuietTimeFrame(BaseTimeFrame):
    """Reads a stream that relies on the original's default delete_before/count_before."""

    STREAM_CLASS = QuietTweetStream
    DURATION = timedelta(minutes=1)

    tweet_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.tweet_count = len(stream_data)
