"""Time-frame models (the user's results) and the task state table."""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, models
from django.db.models.signals import class_prepared
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import grid, queries, rollups, signals, states
from .exceptions import ConfigurationError, UnknownTaskError
from .settings import TaskSettings, app_settings
from .streams import AbstractStream

if TYPE_CHECKING:
    from collections.abc import Sized


#: Name suffix of the partial index of due frames every frame table has (checked by W001).
DUE_INDEX_SUFFIX = "_due"


def frame_indexes() -> list[models.Index]:
    """The partial indexes of every frame table (named for the model): the unfinished
    frames (the claim), and for a rollup over the table where it stops (not calculated)
    and what it must redo (recalculated frames, by when)."""
    return [
        models.Index(
            fields=["-start_time"],
            name=f"%(class)s{DUE_INDEX_SUFFIX}",
            condition=states.UNFINISHED,
        ),
        models.Index(
            fields=["start_time"], name="%(class)s_open", condition=states.NOT_CALCULATED
        ),
        models.Index(fields=["calculated_at"], name="%(class)s_redo", condition=states.RECOMPUTED),
    ]


class TimedIntervalMixin(models.Model):
    """A model with a ``start_time`` and a fixed ``DURATION`` (default one minute).

    Use it for a frame-like model that is not analysed by this app; extend
    :class:`BaseTimeFrame` for one that is.
    """

    DURATION: ClassVar[timedelta] = timedelta(minutes=1)

    start_time = models.DateTimeField(db_index=True)

    class Meta:
        abstract = True

    @property
    def duration(self) -> timedelta:
        return type(self).DURATION

    @property
    def duration_seconds(self) -> float:
        return type(self).DURATION.total_seconds()

    @property
    def end_time(self) -> datetime:
        return self.start_time + self.duration

    @classmethod
    def get_latest(cls) -> Any:
        """The frame with the newest ``start_time``, or None."""
        try:
            return cls._default_manager.latest("start_time")
        except ObjectDoesNotExist:
            return None

    @classmethod
    def get_earliest(cls) -> Any:
        """The frame with the oldest ``start_time``, or None."""
        try:
            return cls._default_manager.earliest("start_time")
        except ObjectDoesNotExist:
            return None

    @classmethod
    def get_latest_end_time(cls) -> datetime | None:
        """End of the newest frame (one indexed aggregate), or None."""
        latest = cls._default_manager.aggregate(v=models.Max("start_time"))["v"]
        return None if latest is None else latest + cls.DURATION

    @classmethod
    def get_earliest_start_time(cls) -> datetime | None:
        """Start of the oldest frame (one indexed aggregate), or None."""
        return cls._default_manager.aggregate(v=models.Min("start_time"))["v"]

    @classmethod
    def get_in_range(
        cls,
        start: datetime | None = None,
        end: datetime | None = None,
        calculated: bool | None = None,
    ) -> models.QuerySet[Any]:
        """Frames overlapping ``[start, end)``; either bound may be None (unbounded).

        ``calculated`` filters on the frame's ``calculated`` flag when given.
        """
        query = cls._default_manager.all()
        if calculated is not None:
            query = query.filter(**{"calculated": calculated})  # a field of BaseTimeFrame
        if end is not None:
            query = query.filter(start_time__lt=end)
        if start is not None:
            query = query.filter(start_time__gt=start - cls.DURATION)
        return query


class BaseTimeFrame(TimedIntervalMixin):
    """One DURATION of stream time and the results of analysing it.

    Subclass it as a concrete model: set ``STREAM_CLASS`` and ``DURATION``, add
    result fields (give them defaults: frames are created in bulk by the
    database), and implement ``calculate(stream_data)``. ``calculate()`` and
    ``cleanup()`` run in the same transaction that marks the frame calculated:
    any rows they write commit together with the frame, or not at all.

    A ``class Meta`` of yours (or of an abstract parent) may inherit
    ``BaseTimeFrame.Meta`` or not: the index that finds due frames is added either
    way (see :func:`carry_due_index`).
    """

    STREAM_CLASS: ClassVar[type[AbstractStream] | None] = None
    #: A frame closes once the stream's latest time has passed its end by this much;
    #: items up to LATENESS late are counted in their own frame.
    LATENESS: ClassVar[timedelta] = timedelta(0)
    #: With no new item for this long (wall clock), frames up to now - LATENESS
    #: close anyway, empty or not. For live streams only; None: wait for items.
    IDLE_TIMEOUT: ClassVar[timedelta | None] = None
    #: Recompute a calculated frame when one of its items arrives afterwards
    #: (needs the stream's get_late_arrivals()). calculate() must then replace,
    #: not add to, what an earlier run of it wrote.
    RECOMPUTE_LATE: ClassVar[bool] = False
    #: Shift of the frame grid: hourly frames with OFFSET = 30 min start at :30.
    OFFSET: ClassVar[timedelta] = timedelta(0)
    #: Result field -> Django aggregate (``Count("pk")``, ``Avg("value")``…) over the
    #: frame's rows of a ModelStream, computed by PostgreSQL for a whole batch of
    #: frames at once, instead of ``calculate()`` (see docs/batch-path.md).
    AGGREGATES: ClassVar[dict[str, Any] | None] = None
    #: ``calculate()`` frames on a ModelStream: read the stream once per run of
    #: claimed frames instead of once per frame (see docs/batch-path.md).
    BATCH_READ: ClassVar[bool] = False

    start_time = models.DateTimeField(unique=True)
    calculated = models.BooleanField(default=False, db_default=False)
    missing_data = models.BooleanField(default=False, db_default=False)
    analysis_time = models.FloatField(
        null=True, blank=True, help_text="Seconds spent in get_stream_data() and calculate()."
    )
    cleanup_time = models.FloatField(
        null=True, blank=True, help_text="Seconds spent in cleanup()."
    )
    calculated_at = models.DateTimeField(
        null=True, blank=True, help_text="When the last successful calculation read its data."
    )
    failed = models.BooleanField(
        default=False, db_default=False, help_text="calculate() failed on every attempt."
    )
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Not retried before this time (after a failure)."
    )
    last_error = models.TextField(
        default="", db_default="", blank=True, help_text="Traceback of the last failure."
    )
    # The trail of recomputes (see stream_analysis.trail): written when the frame is
    # put back to pending after a calculation or a failure, never by calculate().
    recomputes = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Times put back to be calculated again."
    )
    recomputed_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was last put back to be calculated again."
    )
    recompute_reason = models.CharField(
        max_length=10,
        default="",
        db_default="",
        blank=True,
        help_text="Why it was last put back: late (items), recompute (operator), retry (failed).",
    )
    late_items = models.PositiveIntegerField(
        default=0, db_default=0, help_text="Items that arrived after it was calculated."
    )

    #: Frames by state: ``MyFrame.objects.due()``, ``.failed()``… (see ``states``).
    # django-stubs sometimes cannot resolve a from_queryset() manager on an incremental run
    # (a fresh run can): the ignore keeps cached runs from reporting it.
    objects = states.FrameManager()  # type: ignore[django-manager-missing]

    class Meta:
        abstract = True
        get_latest_by = "start_time"
        indexes = frame_indexes()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A rollup recomputes its frames when a source frame is recomputed, unless told not to.
        if "RECOMPUTE_LATE" not in vars(cls) and rollups.is_rollup(cls):
            cls.RECOMPUTE_LATE = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.start_time:%Y-%m-%d %H:%M:%S%z} ({self.status})"

    @property
    def status(self) -> str:
        """'calculated', 'failed', 'stale' (to recompute), 'retrying' or 'pending'."""
        return states.status_of(self)

    def calculate(self, stream_data: Sized | Any) -> Any:
        """Analyse ``stream_data`` (this frame's items) and set this frame's fields.

        Called in a worker; the frame is saved for you afterwards. May raise: the
        frame is then retried with backoff, and marked failed after the last try.
        Set ``self.missing_data = True`` if the data looked incomplete.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement calculate(stream_data).")

    def cleanup(self) -> None:
        """Remove data accumulated elsewhere that is no longer needed. Optional.

        Runs after ``calculate()``, in the same transaction: if it raises, what
        ``calculate()`` wrote is rolled back too and the frame is retried, then
        failed (the original kept ``calculate()``'s writes). Catch errors of
        optional work inside it.
        """

    @classmethod
    def get_stream(cls) -> AbstractStream:
        """A new instance of ``STREAM_CLASS``."""
        if cls.STREAM_CLASS is None:
            raise ConfigurationError(
                f"{cls.__name__}.STREAM_CLASS is not set. "
                "Point it at your AbstractStream subclass."
            )
        return cls.STREAM_CLASS()

    @classmethod
    def unfinished_frames(cls) -> models.QuerySet[Any]:
        """Frames still to be calculated: pending, retrying or stale (see ``states``)."""
        return cls._default_manager.filter(states.UNFINISHED)

    @classmethod
    def get_stream_memory_cutoff(cls) -> datetime | None:
        """The earliest stream time these frames still need; None keeps all data.

        Default: the start of the oldest frame not yet calculated (failed frames
        count: their data is kept so they can be retried), else the start of the
        newest calculated frame, else None. With ``RECOMPUTE_LATE`` it is None
        (any frame may be recomputed): override it to bound how far back late
        items can still change results.
        """
        if cls.RECOMPUTE_LATE:
            return None
        with connection.cursor() as cursor:
            cursor.execute(queries.query("memory_cutoff_bounds", cls))
            oldest_open, newest_done = cursor.fetchone()
        return grid.memory_cutoff(oldest_open, newest_done)

    @classmethod
    def get_performance_stats(
        cls, start: datetime | None = None, end: datetime | None = None
    ) -> dict[str, float | None]:
        """Average ``analysis_time`` and ``cleanup_time`` (seconds) of calculated frames."""
        return cls.get_in_range(start=start, end=end, calculated=True).aggregate(
            analysis_time=models.Avg("analysis_time"),
            cleanup_time=models.Avg("cleanup_time"),
        )

    @classmethod
    def get_average_analysis_time(
        cls, start: datetime | None = None, end: datetime | None = None
    ) -> float | None:
        """Average ``analysis_time`` of calculated frames (the original's name)."""
        return cls.get_performance_stats(start, end)["analysis_time"]

    @classmethod
    def count_completed(cls) -> int:
        """How many frames are calculated."""
        return cls.get_in_range(calculated=True).count()


@receiver(class_prepared)
def carry_due_index(sender: type[models.Model], **kwargs: Any) -> None:
    """Give a concrete frame model the :func:`frame_indexes` its ``Meta`` did not inherit.

    A ``class Meta`` that does not extend ``BaseTimeFrame.Meta`` (on the model, or on an
    abstract parent such as the original's ``class Meta: abstract = True``) drops the
    index that keeps claiming frames fast. It is added back here, in the model's state
    too, so that ``makemigrations`` creates it like any index of the model's own.
    """
    meta = sender._meta
    if not issubclass(sender, BaseTimeFrame) or meta.proxy or meta.parents:
        return
    names = {"app_label": meta.app_label.lower(), "class": sender.__name__.lower()}
    missing = [
        index
        for index in frame_indexes()
        if not any(own.name == index.name % names for own in meta.indexes)
    ]
    if not missing:
        return
    for index in missing:
        index.name %= names
    meta.indexes = [*meta.indexes, *missing]
    meta.original_attrs["indexes"] = meta.indexes


def framework_fields() -> frozenset[str]:
    """The names of the fields every frame has (the key and the bookkeeping written by
    the framework: status, timings, attempts, the late-data trail), not results."""
    return frozenset({"id", *(field.name for field in BaseTimeFrame._meta.local_fields)})


class AnalysisTaskManager(models.Manager["AnalysisTask"]):
    def for_key(self, key: str) -> AnalysisTask:
        """The task's state row, created on first use. Raises UnknownTaskError."""
        configured = app_settings.tasks()
        if key not in configured:
            raise UnknownTaskError(key, sorted(configured))
        task, _ = self.get_or_create(key=key)
        return task


class AnalysisTask(models.Model):
    """An entry of ``ANALYSIS_TIME_FRAME_TASKS`` and its state (running or stopped).

    The configuration (name, frame class, autostart) comes from settings; the
    state is a row so that it survives restarts and is shared by every process.
    """

    key = models.CharField(max_length=100, unique=True)
    running = models.BooleanField(
        null=True, blank=True, help_text="Set by start/stop. Empty: follow 'autostart'."
    )
    rearm_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the pending re-arm tick is due."
    )
    rearm_by = models.CharField(
        max_length=64,
        blank=True,
        default="",
        db_default="",
        editable=False,
        help_text="The message id of the tick that claimed the pending re-arm.",
    )
    last_tick_at = models.DateTimeField(null=True, blank=True, editable=False)
    frame_grid = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",
        editable=False,
        help_text="DURATION and OFFSET of the existing frames, as the coordinator saw them.",
    )
    stream_latest = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The stream's latest time at the last tick.",
    )
    stream_latest_seen_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the stream's latest time last moved.",
    )
    late_checked_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Late arrivals are read from here on."
    )

    objects = AnalysisTaskManager()

    class Meta:
        ordering = ["key"]
        verbose_name = "analysis task"

    def __str__(self) -> str:
        return self.name

    # -- configuration --------------------------------------------------------

    @property
    def config(self) -> TaskSettings:
        try:
            return app_settings.tasks()[self.key]
        except KeyError:
            raise UnknownTaskError(self.key, sorted(app_settings.tasks())) from None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def frame_class_path(self) -> str:
        return self.config.frame_class_path

    @property
    def autostart(self) -> bool:
        return self.config.autostart

    def get_frame_class(self) -> type[BaseTimeFrame]:
        """The task's frame model, imported from ``frame_class_path``."""
        try:
            frame_class = import_string(self.frame_class_path)
        except ImportError as exc:
            raise ConfigurationError(
                f"Task {self.key!r}: frame_class_path {self.frame_class_path!r} does not "
                f"import ({exc}). Run 'manage.py check'."
            ) from exc
        return frame_class

    # -- state ----------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        """Explicit start/stop wins; otherwise the task runs if it autostarts."""
        return self.autostart if self.running is None else self.running

    @classmethod
    def get(cls, key: str | None = None) -> Any:
        """The task with this key (None if unknown, as in the original), or all tasks."""
        if key is None:
            return [cls.objects.for_key(k) for k in sorted(app_settings.tasks())]
        try:
            return cls.objects.for_key(key)
        except UnknownTaskError:
            return None

    @classmethod
    def require(cls, key: str) -> AnalysisTask:
        """Like ``get(key)`` but raises :class:`UnknownTaskError` naming the valid keys."""
        return cls.objects.for_key(key)

    def schedule(self, cancel_first: bool = True, start_now: bool = True) -> bool:
        """Start the task (the original's signature); returns True.

        ``start_now=True`` ticks the task as soon as the current transaction commits
        (its due frames are created and calculated at once); ``start_now=False`` only
        marks it running and leaves the first tick to the scheduler (within a minute).
        ``cancel_first`` is accepted for the original's callers and changes nothing:
        a task is one row, so starting it twice never schedules it twice.
        """
        del cancel_first  # nothing to cancel: there is no second schedule to avoid
        self._set_running(True)
        if start_now:
            signals.tick_requested.send(sender=type(self), task=self)
        return True

    def cancel(self) -> bool:
        """Stop the task. Pending frames stay pending until it is started again."""
        was_running = self.is_running
        self._set_running(False)
        return was_running

    def clear_queue(self) -> tuple[int, int]:
        """Delete this task's pending frames and queued messages: (messages, frames)."""
        frame_class = self.get_frame_class()
        frames_deleted, _ = frame_class.unfinished_frames().delete()
        responses: list[tuple[Any, Any]] = signals.queue_cleared.send(sender=type(self), task=self)
        messages = sum(r for _, r in responses if isinstance(r, int))
        return messages, frames_deleted

    def get_rq_job(self) -> bool | None:
        """Deprecated: the original's "is the task scheduled?" (its RQ scheduler job).

        There is no RQ job here: returns True when the task runs, else None, so that
        ``if task.get_rq_job():`` keeps working. Use :attr:`is_running` instead (and
        :attr:`last_tick_at` for when it last ran).
        """
        warnings.warn(
            "AnalysisTask.get_rq_job() is deprecated: there is no RQ job; use "
            "task.is_running (True/False) and task.last_tick_at instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        return True if self.is_running else None

    def _set_running(self, running: bool) -> None:
        self.running = running
        type(self).objects.filter(pk=self.pk).update(running=running)


class CleanupTotal(models.Model):
    """Running totals of the stream data deleted by :func:`stream_analysis.cleanup`, per stream.

    One row per stream class, shared by every process, so that the metrics of any
    process report the cluster's totals. ``rows_deleted`` only grows (a counter).
    """

    stream = models.CharField(max_length=255, unique=True, help_text="Dotted path of the class.")
    rows_deleted = models.BigIntegerField(default=0, db_default=0)
    runs = models.BigIntegerField(default=0, db_default=0)
    last_run_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["stream"]
        verbose_name = "cleanup total"

    def __str__(self) -> str:
        return f"{self.stream}: {self.rows_deleted} rows deleted"

    @staticmethod
    def label(stream_class: type[AbstractStream]) -> str:
        """The ``stream`` value of ``stream_class``: its dotted path."""
        return f"{stream_class.__module__}.{stream_class.__qualname__}"

    @classmethod
    def record(cls, stream_class: type[AbstractStream], deleted: int, when: datetime) -> None:
        """Add one cleanup run that deleted ``deleted`` rows (safe under concurrency)."""
        label = cls.label(stream_class)
        totals = {
            "rows_deleted": models.F("rows_deleted") + deleted,
            "runs": models.F("runs") + 1,
            "last_run_at": when,
        }
        if not cls.objects.filter(stream=label).update(**totals):
            cls.objects.get_or_create(stream=label)  # a concurrent creation is caught in there
            cls.objects.filter(stream=label).update(**totals)


class RecomputeTotal(models.Model):
    """Running totals of recomputes per frame model and reason, shared by every process.

    ``frames`` counts frames put back to pending; ``late_items`` the late items
    that caused them (reason ``late`` only). Both only grow (counters).
    """

    frame_model = models.CharField(max_length=255, help_text="app_label.ModelName")
    reason = models.CharField(max_length=10)
    frames = models.BigIntegerField(default=0, db_default=0)
    late_items = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        ordering = ["frame_model", "reason"]
        verbose_name = "recompute total"
        constraints = [
            models.UniqueConstraint(fields=["frame_model", "reason"], name="recompute_total_once")
        ]

    def __str__(self) -> str:
        return f"{self.frame_model} {self.reason}: {self.frames} frames"

    @staticmethod
    def label(frame_class: type[models.Model]) -> str:
        return frame_class._meta.label

    @classmethod
    def record(
        cls, frame_class: type[models.Model], reason: str, frames: int, late_items: int = 0
    ) -> None:
        """Add ``frames`` recomputes (and their late items) in the caller's transaction."""
        if not frames:
            return
        key: dict[str, Any] = {"frame_model": cls.label(frame_class), "reason": reason}
        totals = {
            "frames": models.F("frames") + frames,
            "late_items": models.F("late_items") + late_items,
        }
        if not cls.objects.filter(**key).update(**totals):
            cls.objects.get_or_create(**key)  # a concurrent creation is caught in there
            cls.objects.filter(**key).update(**totals)
