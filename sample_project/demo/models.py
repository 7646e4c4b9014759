"""The original README's example, in Python 3: tweets, their stream, a counting frame."""

from datetime import timedelta

from django.db import models
from django.db.models.functions import Length

import stream_analysis


class Tweet(models.Model):
    text = models.CharField(max_length=280)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.created_at:%H:%M:%S} {self.text[:40]}"

    @classmethod
    def get_earliest_created_at(cls):
        return cls.objects.aggregate(v=models.Min("created_at"))["v"]

    @classmethod
    def get_latest_created_at(cls):
        return cls.objects.aggregate(v=models.Max("created_at"))["v"]

    @classmethod
    def get_created_in_range(cls, start, end):
        return cls.objects.filter(created_at__gte=start, created_at__lt=end)


class TweetStream(stream_analysis.AbstractStream):
    """Stream interface for Tweets"""

    def is_stream_empty(self):
        return not Tweet.objects.exists()

    def get_earliest_stream_time(self):
        return Tweet.get_earliest_created_at()

    def get_latest_stream_time(self):
        return Tweet.get_latest_created_at()

    def get_stream_data(self, start, end):
        return Tweet.get_created_in_range(start, end).order_by("created_at")

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        # __lt, not the original README's __lte: a tweet exactly at the cutoff
        # belongs to a frame that may not be calculated yet.
        deleted, _ = Tweet.objects.filter(created_at__lt=cutoff_datetime).delete()
        return deleted

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Tweet.objects.filter(created_at__lt=cutoff_datetime).count()


class DemoTimeFrame(stream_analysis.BaseTimeFrame):
    # This works with the TweetStream
    STREAM_CLASS = TweetStream

    # Analyze every 15 seconds
    DURATION = timedelta(seconds=15)

    # Store the total tweet count in this time frame
    item_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        # store the result of our "calculation"
        self.item_count = len(stream_data)


# The batch path: the same tweets as a ModelStream, and results computed by PostgreSQL.


class TweetModelStream(stream_analysis.ModelStream):
    """Tweets as a ready-made stream: the model and its time column are enough."""

    model = Tweet
    time_field = "created_at"


class DemoAggregateFrame(stream_analysis.BaseTimeFrame):
    """Tweets per 15 s and their average length, a whole batch of frames per SQL statement."""

    STREAM_CLASS = TweetModelStream
    DURATION = timedelta(seconds=15)

    tweet_count = models.IntegerField(default=0)
    average_length = models.FloatField(null=True, blank=True)

    AGGREGATES = {
        "tweet_count": models.Count("pk"),
        "average_length": models.Avg(Length("text")),
    }
