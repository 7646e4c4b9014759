"""The tweets (the client's ``twitter_stream`` app): the stream being analysed."""

from django.db import models


class Tweet(models.Model):
    created_at = models.DateTimeField(db_index=True)
    text = models.CharField(max_length=250)
    retweeted_status_id = models.BigIntegerField(null=True, blank=True, default=None)

    @classmethod
    def get_earliest_created_at(cls):
        return cls.objects.aggregate(t=models.Min("created_at"))["t"]

    @classmethod
    def get_latest_created_at(cls):
        return cls.objects.aggregate(t=models.Max("created_at"))["t"]

    @classmethod
    def get_created_in_range(cls, start, end):
        return cls.objects.filter(created_at__gte=start, created_at__lt=end)
