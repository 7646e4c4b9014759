"""Frame models of the benchmarks: a trivial calculate() on two kinds of stream.

``SyntheticFrame`` reads a stream that answers from class attributes without
any query, so a drain measures the framework's own overhead. ``TableFrame``
reads ``Reading`` rows with the ORM, one query per frame, as a real stream does.
"""

import os
import time
from datetime import datetime, timedelta
from typing import ClassVar

from django.db import models

from stream_analysis import AbstractStream, BaseTimeFrame, FrameStream, ModelStream


class SyntheticStream(AbstractStream):
    """A stream with no items: its bounds are class attributes, set by the benchmark."""

    earliest: ClassVar[datetime | None] = None
    latest: ClassVar[datetime | None] = None

    def is_stream_empty(self):
        return self.earliest is None

    def get_earliest_stream_time(self):
        return self.earliest

    def get_latest_stream_time(self):
        return self.latest

    def get_stream_data(self, start, end):
        return ()

    def delete_before(self, cutoff_datetime):
        return 0

    def count_before(self, cutoff_datetime):
        return 0


class Reading(models.Model):
    created_at = models.DateTimeField(db_index=True)
    value = models.FloatField()

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.value}"


class ReadingStream(AbstractStream):
    """``Reading`` rows, read with the ORM."""

    def is_stream_empty(self):
        return not Reading.objects.exists()

    def get_earliest_stream_time(self):
        return Reading.objects.aggregate(v=models.Min("created_at"))["v"]

    def get_latest_stream_time(self):
        return Reading.objects.aggregate(v=models.Max("created_at"))["v"]

    def get_stream_data(self, start, end):
        return Reading.objects.filter(created_at__gte=start, created_at__lt=end)

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Reading.objects.filter(created_at__lt=cutoff_datetime).delete()[0]

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Reading.objects.filter(created_at__lt=cutoff_datetime).count()


class SyntheticFrame(BaseTimeFrame):
    STREAM_CLASS = SyntheticStream
    DURATION = timedelta(seconds=15)

    item_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.item_count = len(stream_data)
        if WORK_SECONDS:
            time.sleep(WORK_SECONDS)  # bench.live_latency: a backlog that takes a while


#: Seconds of simulated work per SyntheticFrame (env BENCH_CALCULATE_SECONDS).
WORK_SECONDS = float(os.environ.get("BENCH_CALCULATE_SECONDS", "0"))


class LiveFrame(BaseTimeFrame):
    """15 s frames of the live ``Reading`` stream (bench.live_latency)."""

    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=15)

    item_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.item_count = len(stream_data)


class TableFrame(BaseTimeFrame):
    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=15)

    item_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.item_count = len(stream_data)


class LateReading(models.Model):
    """A reading with the wall-clock time it was stored (its arrival)."""

    created_at = models.DateTimeField(db_index=True)
    ingested_at = models.DateTimeField(db_index=True)

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} (arrived {self.ingested_at:%H:%M:%S})"


class LateReadingStream(AbstractStream):
    """``LateReading`` rows; reports late arrivals with one index range scan."""

    def is_stream_empty(self):
        return not LateReading.objects.exists()

    def get_earliest_stream_time(self):
        return LateReading.objects.aggregate(v=models.Min("created_at"))["v"]

    def get_latest_stream_time(self):
        return LateReading.objects.aggregate(v=models.Max("created_at"))["v"]

    def get_stream_data(self, start, end):
        return LateReading.objects.filter(created_at__gte=start, created_at__lt=end)

    def delete_before(self, cutoff_datetime):
        return 0

    def count_before(self, cutoff_datetime):
        return 0

    def get_late_arrivals(self, arrived_after, arrived_until, time_before):
        return LateReading.objects.filter(
            ingested_at__gt=arrived_after,
            ingested_at__lte=arrived_until,
            created_at__lt=time_before,
        ).values_list("created_at", "ingested_at")


class LateFrame(BaseTimeFrame):
    STREAM_CLASS = LateReadingStream
    DURATION = timedelta(seconds=15)
    RECOMPUTE_LATE = True

    item_count = models.IntegerField(default=0)

    def calculate(self, stream_data):
        self.item_count = len(stream_data)


class QuarterHourFrame(BaseTimeFrame):
    """A rollup: 15-minute sums of ``SyntheticFrame``'s 15 s counts (bench.rollup)."""

    STREAM_CLASS = FrameStream.of(SyntheticFrame)
    DURATION = timedelta(minutes=15)

    item_count = models.IntegerField(default=0)
    frames = models.IntegerField(default=0)

    def calculate(self, stream_data):
        totals = stream_data.aggregate(items=models.Sum("item_count"), frames=models.Count("pk"))
        self.item_count = totals["items"] or 0
        self.frames = totals["frames"]


# -- the batch path (bench.aggregates): one stream, four ways to the same results ----------


class ReadingModelStream(ModelStream):
    """``Reading`` rows as a ModelStream."""

    model = Reading
    time_field = "created_at"


class ReadingResults(BaseTimeFrame):
    """10 s frames of ``Reading``: how many, and their average value."""

    STREAM_CLASS = ReadingModelStream
    DURATION = timedelta(seconds=10)

    item_count = models.IntegerField(default=0)
    average = models.FloatField(null=True)

    class Meta(BaseTimeFrame.Meta):
        abstract = True


class AggregateFrame(ReadingResults):
    """(b) computed by PostgreSQL, a batch at a time."""

    AGGREGATES = {"item_count": models.Count("pk"), "average": models.Avg("value")}


class CalculatedResults(ReadingResults):
    class Meta(BaseTimeFrame.Meta):
        abstract = True

    def calculate(self, stream_data):
        values = [reading.value for reading in stream_data]
        self.item_count = len(values)
        self.average = sum(values) / len(values) if values else None


class BatchReadFrame(CalculatedResults):
    """(c) calculate(), one stream read per run of claimed frames."""

    BATCH_READ = True


class PerFrameFrame(CalculatedResults):
    """(d) calculate(), one stream read per frame."""


class LimitFrame(ReadingResults):
    """(a) the target of the hand-written statement (no task)."""
