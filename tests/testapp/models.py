"""Streams and frames of the test suite.

``Item`` is a stream with known timestamps. ``CalculationLog`` is written inside
``calculate()``: a row commits only with its frame, so counting rows per frame
counts the calculations that really committed (exactly-once means one row).
``FlakyFrame`` fails on purpose, as told by the ``Failure`` table.
"""

import os
import time
from datetime import timedelta

from django.db import models

from stream_analysis import AbstractStream, BaseTimeFrame


class Item(models.Model):
    created_at = models.DateTimeField(db_index=True)


class ItemStream(AbstractStream):
    def is_stream_empty(self):
        return not Item.objects.exists()

    def get_earliest_stream_time(self):
        return Item.objects.aggregate(v=models.Min("created_at"))["v"]

    def get_latest_stream_time(self):
        return Item.objects.aggregate(v=models.Max("created_at"))["v"]

    def get_stream_data(self, start, end):
        return Item.objects.filter(created_at__gte=start, created_at__lt=end)

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Item.objects.filter(created_at__lt=cutoff_datetime).delete()[0]

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Item.objects.filter(created_at__lt=cutoff_datetime).count()


class CalculationLog(models.Model):
    frame_model = models.CharField(max_length=50)
    start_time = models.DateTimeField()
    pid = models.IntegerField()


class Behaviour(models.Model):
    """Test controls read by calculate(): fail some attempts, stall once, sleep."""

    frame_start = models.DateTimeField(unique=True)
    #: The first ``failures`` attempts raise.
    failures = models.IntegerField(default=0)
    #: On the first attempt only (the file does not exist yet): write this pid
    #: file, then sleep ``sleep_seconds`` so the test can kill the worker.
    stall_marker = models.CharField(max_length=500, default="", blank=True)
    sleep_seconds = models.FloatField(default=0)


class LoggedFrame(BaseTimeFrame):
    STREAM_CLASS = ItemStream
    DURATION = timedelta(seconds=15)

    item_count = models.IntegerField(default=0)

    class Meta(BaseTimeFrame.Meta):
        abstract = True

    def calculate(self, stream_data):
        # Logged first: a failed or killed attempt must roll this row back.
        CalculationLog.objects.create(
            frame_model=type(self).__name__, start_time=self.start_time, pid=os.getpid()
        )
        behave = Behaviour.objects.filter(frame_start=self.start_time).first()
        if behave is not None:
            self.misbehave(behave)
        # Lets a test slow every frame down so that several workers really race.
        time.sleep(float(os.environ.get("TEST_CALCULATE_SLEEP", "0")))
        self.item_count = len(stream_data)

    def misbehave(self, behave):
        # The marker is a file, not a row: a killed attempt rolls back its rows.
        if behave.stall_marker and not os.path.exists(behave.stall_marker):
            with open(behave.stall_marker, "w") as marker:
                marker.write(str(os.getpid()))
            time.sleep(behave.sleep_seconds)
        if self.attempts < behave.failures:
            raise RuntimeError(f"planned failure {self.attempts + 1} of {self.start_time}")


class CountFrame(LoggedFrame):
    pass


class FlakyFrame(LoggedFrame):
    pass


class MinuteFrame(LoggedFrame):
    DURATION = timedelta(seconds=70)


class SecondFrame(LoggedFrame):
    """One-second frames: the coordinator must re-arm itself between periodic ticks."""

    DURATION = timedelta(seconds=1)
