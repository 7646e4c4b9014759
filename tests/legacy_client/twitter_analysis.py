"""The client's ``twitter_analysis`` library: a stream interface and an abstract frame.

``TweetTimeFrame`` declares its own ``class Meta: abstract = True``, not
inheriting ``BaseTimeFrame.Meta``, as the original's users did.
"""

import logging

import stream_analysis

from .stream import Tweet

logger = logging.getLogger("twitter_analysis")


class TweetStream(stream_analysis.AbstractStream):
    """Stream interface for Tweets"""

    def is_stream_empty(self):
        return Tweet.objects.count() == 0

    def get_earliest_stream_time(self):
        return Tweet.get_earliest_created_at()

    def get_latest_stream_time(self):
        return Tweet.get_latest_created_at()

    def get_stream_data(self, start, end):
        return Tweet.get_created_in_range(start, end).order_by("created_at")

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        logger.info("Deleting tweets before %s", cutoff_datetime)
        analyzed = Tweet.objects.filter(created_at__lt=cutoff_datetime)
        count = analyzed.count()
        analyzed.delete()
        return count

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        analyzed = Tweet.objects.filter(created_at__lt=cutoff_datetime)
        return analyzed.count()


class QuietTweetStream(stream_analysis.AbstractStream):
    """A stream written against the original's defaults: no delete_before/count_before."""

    def is_stream_empty(self):
        return Tweet.objects.count() == 0

    def get_earliest_stream_time(self):
        return Tweet.get_earliest_created_at()

    def get_latest_stream_time(self):
        return Tweet.get_latest_created_at()

    def get_stream_data(self, start, end):
        return Tweet.get_created_in_range(start, end).order_by("created_at")


class TweetTimeFrame(stream_analysis.BaseTimeFrame):
    """
    Extend this if you want to define a Time Frame for the tweet stream.
    """

    class Meta:
        abstract = True

    STREAM_CLASS = TweetStream
