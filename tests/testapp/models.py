"""Streams and frames of the test suite.

``Item`` is a stream with known timestamps. ``CalculationLog`` is written inside
``calculate()``: a row commits only with its frame, so counting rows per frame
counts the calculations that really committed (exactly-once means one row).
``FlakyFrame`` fails on purpose, as told by the ``Failure`` table.
"""

import os
import time
from datetime import timedelta
from pathlib import Path

from django.contrib.postgres.aggregates import ArrayAgg
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Coalesce
from django.utils import timezone

import stream_analysis
from stream_analysis import AbstractStream, BaseTimeFrame, FrameStream


class Item(models.Model):
    created_at = models.DateTimeField(db_index=True)


class ItemStream(AbstractStream):
    #: The Item table, which ItemModelStream reads too: cleanup keeps what either needs.
    DATA = Item

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


#: How long a frame waits at the gate at most; then it goes on, and the test that set
#: the gate finds too few worker instances took part.
GATE_TIMEOUT = 60


def wait_at_gate() -> None:
    """With ``TEST_GATE_DIR`` and ``TEST_GATE_INSTANCES``: hold every frame until worker
    processes of that many Dramatiq instances (main processes) have each started one,
    or :data:`GATE_TIMEOUT` has passed. Each process leaves a file named
    ``<main pid>-<pid>``; files, not rows: the rows of a batch still under way are
    invisible to the other processes. So a test can show work is shared between
    instances without racing them: no instance can drain the backlog alone."""
    gate = os.environ.get("TEST_GATE_DIR")
    if not gate:
        return
    with open(os.path.join(gate, f"{os.getppid()}-{os.getpid()}"), "w"):
        pass
    wanted = int(os.environ["TEST_GATE_INSTANCES"])
    until = time.monotonic() + GATE_TIMEOUT
    while time.monotonic() < until:
        if len(set(gate_arrivals(gate).values())) >= wanted:
            return
        time.sleep(0.02)


def gate_env(directory: Path, instances: int) -> dict[str, str]:
    """The worker environment that holds frames at a gate in ``directory`` (made here)
    until processes of ``instances`` Dramatiq instances have reached it."""
    directory.mkdir()
    return {"TEST_GATE_DIR": str(directory), "TEST_GATE_INSTANCES": str(instances)}


def gate_arrivals(gate: str | Path) -> dict[int, int]:
    """Each worker process that reached the gate: its pid -> its main process's pid."""
    return {int(pid): int(main) for main, pid in (name.split("-") for name in os.listdir(gate))}


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
        wait_at_gate()
        # Lets a test slow every frame down so that several workers really race.
        time.sleep(float(os.environ.get("TEST_CALCULATE_SLEEP", "0")))
        self.item_count = len(stream_data)

    def misbehave(self, behave):
        # The marker is a file, not a row: a killed attempt rolls back its rows.
        if behave.stall_marker and not os.path.exists(behave.stall_marker):
            with open(behave.stall_marker, "w") as marker:
                marker.write(str(os.getpid()))
            # In short naps: a worker's time limit interrupts Python code only
            # between bytecodes, never inside one long time.sleep().
            until = time.monotonic() + behave.sleep_seconds
            while time.monotonic() < until:
                time.sleep(0.05)
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


# -- event time: items with an arrival stamp -------------------------------------------


class Arrival(models.Model):
    """A stream item with its event time and the wall-clock time it was stored."""

    created_at = models.DateTimeField(db_index=True)
    ingested_at = models.DateTimeField(db_index=True, default=timezone.now)


class ArrivalStream(AbstractStream):
    def is_stream_empty(self):
        return not Arrival.objects.exists()

    def get_earliest_stream_time(self):
        return Arrival.objects.aggregate(v=models.Min("created_at"))["v"]

    def get_latest_stream_time(self):
        return Arrival.objects.aggregate(v=models.Max("created_at"))["v"]

    def get_stream_data(self, start, end):
        return Arrival.objects.filter(created_at__gte=start, created_at__lt=end)

    def delete_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Arrival.objects.filter(created_at__lt=cutoff_datetime).delete()[0]

    def count_before(self, cutoff_datetime):
        if cutoff_datetime is None:
            return 0
        return Arrival.objects.filter(created_at__lt=cutoff_datetime).count()

    def get_late_arrivals(self, arrived_after, arrived_until, time_before):
        return Arrival.objects.filter(
            ingested_at__gt=arrived_after,
            ingested_at__lte=arrived_until,
            created_at__lt=time_before,
        ).values_list("created_at", "ingested_at")


class EventFrame(BaseTimeFrame):
    STREAM_CLASS = ArrivalStream
    DURATION = timedelta(seconds=15)

    item_count = models.IntegerField(default=0)
    runs = models.IntegerField(default=0)

    class Meta(BaseTimeFrame.Meta):
        abstract = True

    def calculate(self, stream_data):
        self.item_count = len(stream_data)
        self.runs += 1


class LateFrame(EventFrame):
    """Allowed lateness 10 s, and late items recompute their frame."""

    LATENESS = timedelta(seconds=10)
    RECOMPUTE_LATE = True


class StrictFrame(EventFrame):
    """Allowed lateness 10 s, and later items are ignored."""

    LATENESS = timedelta(seconds=10)


class IdleFrame(EventFrame):
    """Closes frames by the wall clock once the stream is quiet for 30 s."""

    IDLE_TIMEOUT = timedelta(seconds=30)


class HalfPastFrame(EventFrame):
    """Hourly frames starting at half past."""

    DURATION = timedelta(hours=1)
    OFFSET = timedelta(minutes=30)


# -- rollups: 15 s frames of arrivals, summed up per minute, then per hour ------------


class FifteenFrame(EventFrame):
    """15 s frames that recompute late items and fail as told by ``Behaviour``."""

    RECOMPUTE_LATE = True

    def calculate(self, stream_data):
        behave = Behaviour.objects.filter(frame_start=self.start_time).first()
        if behave is not None and self.attempts < behave.failures:
            raise RuntimeError(f"planned failure {self.attempts + 1} of {self.start_time}")
        super().calculate(stream_data)


class MinuteRollup(BaseTimeFrame):
    """The item count per minute, from the 15 s frames' counts."""

    STREAM_CLASS = FrameStream.of(FifteenFrame)
    DURATION = timedelta(minutes=1)

    item_count = models.IntegerField(default=0)
    frames = models.IntegerField(default=0)
    runs = models.IntegerField(default=0)

    def calculate(self, stream_data):
        # Logged and told to stall like LoggedFrame: a killed attempt must roll this row back.
        CalculationLog.objects.create(
            frame_model=type(self).__name__, start_time=self.start_time, pid=os.getpid()
        )
        behave = Behaviour.objects.filter(frame_start=self.start_time).first()
        if behave is not None:
            LoggedFrame.misbehave(self, behave)  # type: ignore[arg-type]
        self.item_count = sum(frame.item_count for frame in stream_data)
        self.frames = len(stream_data)
        self.runs += 1


class HourRollup(BaseTimeFrame):
    """The item count per hour, from the minutes' counts (a rollup of a rollup)."""

    STREAM_CLASS = FrameStream.of(MinuteRollup)
    DURATION = timedelta(hours=1)

    item_count = models.IntegerField(default=0)
    frames = models.IntegerField(default=0)
    runs = models.IntegerField(default=0)

    def calculate(self, stream_data):
        totals = stream_data.aggregate(items=models.Sum("item_count"), frames=models.Count("pk"))
        self.item_count = totals["items"] or 0
        self.frames = totals["frames"]
        self.runs += 1


class MinuteSqlRollup(BaseTimeFrame):
    """MinuteRollup's counts by AGGREGATES: PostgreSQL sums the 15 s frames, a batch at a time."""

    STREAM_CLASS = FrameStream.of(FifteenFrame)
    DURATION = timedelta(minutes=1)
    AGGREGATES = {
        "item_count": Coalesce(models.Sum("item_count"), 0),
        "frames": models.Count("pk"),
    }

    item_count = models.IntegerField(default=0)
    frames = models.IntegerField(default=0)


class HourSqlRollup(BaseTimeFrame):
    """HourRollup's counts by AGGREGATES, from MinuteSqlRollup (a rollup of a rollup)."""

    STREAM_CLASS = FrameStream.of(MinuteSqlRollup)
    DURATION = timedelta(hours=1)
    AGGREGATES = MinuteSqlRollup.AGGREGATES

    item_count = models.IntegerField(default=0)
    frames = models.IntegerField(default=0)


# -- rollups of the fault suite: 1 s frames summed per 10 s, then per minute ------------


class LoggedRollup(BaseTimeFrame):
    """Sums its source frames' item_count; logs each calculation (exactly-once checks)."""

    item_count = models.IntegerField(default=0)

    class Meta(BaseTimeFrame.Meta):
        abstract = True

    def calculate(self, stream_data):
        CalculationLog.objects.create(
            frame_model=type(self).__name__, start_time=self.start_time, pid=os.getpid()
        )
        time.sleep(float(os.environ.get("TEST_CALCULATE_SLEEP", "0")))
        self.item_count = sum(frame.item_count for frame in stream_data)


class TenSecondRollup(LoggedRollup):
    STREAM_CLASS = FrameStream.of(SecondFrame)
    DURATION = timedelta(seconds=10)


class MinuteOfSeconds(LoggedRollup):
    STREAM_CLASS = FrameStream.of(TenSecondRollup)
    DURATION = timedelta(minutes=1)


# -- the batch path: a ModelStream, AGGREGATES and batch reads ------------------------


class Reading(models.Model):
    """A stream item with a value, a tag and the wall-clock time it was stored."""

    taken_at = models.DateTimeField(db_index=True)
    arrived_at = models.DateTimeField(db_index=True, default=timezone.now)
    value = models.IntegerField(default=0)
    tag = models.CharField(max_length=20, default="", blank=True)


class ReadingStream(stream_analysis.ModelStream):
    model = Reading
    time_field = "taken_at"
    arrival_field = "arrived_at"


class KeptReadingStream(ReadingStream):
    """Only the readings tagged 'keep'."""

    def get_queryset(self):
        return super().get_queryset().filter(tag="keep")


#: The results, as SQL computes them (also what ReadingResults.calculate() computes).
READING_AGGREGATES = {
    "reading_count": models.Count("pk"),
    "total": models.Sum("value"),
    "average": models.Avg("value"),
    "lowest": models.Min("value"),
    "tagged": models.Count("pk", filter=models.Q(tag="x")),
    "total_or_zero": Coalesce(models.Sum("value"), 0),
}


class ReadingResults(BaseTimeFrame):
    """Frames of 7 s from 3 s past the epoch's grid, and the results of READING_AGGREGATES."""

    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=7)
    OFFSET = timedelta(seconds=3)

    reading_count = models.IntegerField(default=0)
    total = models.BigIntegerField(null=True)
    average = models.FloatField(null=True)
    lowest = models.IntegerField(null=True)
    tagged = models.IntegerField(default=0)
    total_or_zero = models.BigIntegerField(default=0)

    class Meta(BaseTimeFrame.Meta):
        abstract = True


class SqlFrame(ReadingResults):
    """Results computed by PostgreSQL, a batch at a time."""

    AGGREGATES = READING_AGGREGATES


class PythonResults(ReadingResults):
    """The same results from calculate(), which also uses the QuerySet API of its argument."""

    class Meta(BaseTimeFrame.Meta):
        abstract = True

    def calculate(self, stream_data):
        if any(reading.tag == "boom" for reading in stream_data):
            raise RuntimeError(f"a 'boom' reading in {self.start_time}")
        values = [reading.value for reading in stream_data]
        self.reading_count = len(stream_data)
        self.total = sum(values) if values else None
        self.average = sum(values) / len(values) if values else None
        self.lowest = min(values, default=None)
        self.tagged = stream_data.filter(tag="x").count()
        self.total_or_zero = stream_data.aggregate(v=Coalesce(models.Sum("value"), 0))["v"]


class PythonFrame(PythonResults):
    """calculate() with one stream read per frame."""


class BatchReadFrame(PythonResults):
    """calculate() with one stream read per run of claimed frames."""

    BATCH_READ = True


class LateSqlFrame(ReadingResults):
    """AGGREGATES frames recomputed when a late reading arrives."""

    AGGREGATES = READING_AGGREGATES
    LATENESS = timedelta(seconds=10)
    RECOMPUTE_LATE = True


class IdleSqlFrame(ReadingResults):
    """AGGREGATES frames closed by the wall clock once the stream is quiet for 30 s."""

    AGGREGATES = READING_AGGREGATES
    IDLE_TIMEOUT = timedelta(seconds=30)


class KeptSqlFrame(ReadingResults):
    """AGGREGATES over the readings tagged 'keep' only."""

    STREAM_CLASS = KeptReadingStream
    AGGREGATES = READING_AGGREGATES


class FragileSqlFrame(BaseTimeFrame):
    """100 / value summed: a frame with a reading of value 0 fails (division by zero)."""

    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=10)
    AGGREGATES = {
        "reading_count": models.Count("pk"),
        "inverse_sum": models.Sum(models.Value(100) / models.F("value")),
    }

    reading_count = models.IntegerField(default=0)
    inverse_sum = models.IntegerField(null=True)


class SlowSqlFrame(BaseTimeFrame):
    """AGGREGATES through testapp_slow_value(), a SQL function a test creates (and slows)."""

    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=10)
    AGGREGATES = {
        "reading_count": models.Count("pk"),
        "total": models.Sum(
            models.Func(
                models.F("value"),
                function="testapp_slow_value",
                output_field=models.IntegerField(),
            )
        ),
    }

    reading_count = models.IntegerField(default=0)
    total = models.BigIntegerField(null=True)


class ArraySqlFrame(BaseTimeFrame):
    """A PostgreSQL aggregate into an array field: every value of the frame, sorted."""

    STREAM_CLASS = ReadingStream
    DURATION = timedelta(seconds=10)
    AGGREGATES = {"values": ArrayAgg("value", order_by="value")}

    values = ArrayField(models.IntegerField(), null=True)


class ItemModelStream(stream_analysis.ModelStream):
    """``Item`` rows as a ModelStream (the fault suite's stream)."""

    model = Item
    time_field = "created_at"


class SecondSqlFrame(BaseTimeFrame):
    """One-second frames counted by AGGREGATES: the fault suite's batch-path task."""

    STREAM_CLASS = ItemModelStream
    DURATION = timedelta(seconds=1)
    AGGREGATES = {"item_count": models.Count("pk")}

    item_count = models.IntegerField(default=0)
