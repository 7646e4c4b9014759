"""ModelStream: the stream interface over a Django model with a time column, ready made."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from django.db import models, transaction

from .streams import AbstractStream


class ModelStream(AbstractStream):
    """A stream of the rows of a Django model, ordered by one of its DateTimeFields.

    Set ``model`` and ``time_field`` (and optionally ``arrival_field``)::

        class ReadingStream(stream_analysis.ModelStream):
            model = Reading
            time_field = "taken_at"         # the event time (index it)
            arrival_field = "arrived_at"    # optional: enables RECOMPUTE_LATE

    Every method reads :meth:`get_queryset`; override it to analyse part of a
    table (``super().get_queryset().filter(tag="x")``). Frame classes with
    ``AGGREGATES`` need a ModelStream: their results are computed by PostgreSQL
    from this queryset. For data that is not a Django model, subclass
    :class:`AbstractStream` instead.
    """

    #: The model whose rows are the stream's items.
    model: ClassVar[type[models.Model] | None] = None
    #: Name of the model's DateTimeField holding each item's (event) time.
    time_field: ClassVar[str] = ""
    #: Name of a DateTimeField set when the row was stored (e.g. ``default=timezone.now``);
    #: None: late arrivals cannot be reported (RECOMPUTE_LATE needs them).
    arrival_field: ClassVar[str | None] = None
    #: Rows deleted per statement by :meth:`delete_before`: each chunk is its own
    #: (sub)transaction, so a cleanup of millions of rows never holds one huge lock.
    delete_chunk_size: ClassVar[int] = 10_000

    @classmethod
    def data_key(cls) -> Any:
        """The model (unless ``DATA`` says otherwise): every ModelStream over one model
        is cleaned only up to the earliest time any of their tasks still needs."""
        return cls.model if cls.DATA is None else cls.DATA

    def get_queryset(self) -> models.QuerySet[Any]:
        """Every item of the stream. Override to filter; every method honours it."""
        if self.model is None:
            raise NotImplementedError(f"{type(self).__name__}.model is not set.")
        return self.model._default_manager.all()

    def _before(self, cutoff: datetime) -> models.QuerySet[Any]:
        return self.get_queryset().filter(**{f"{self.time_field}__lt": cutoff})

    def is_stream_empty(self) -> bool:
        return not self.get_queryset().exists()

    def get_earliest_stream_time(self) -> datetime | None:
        return self.get_queryset().aggregate(v=models.Min(self.time_field))["v"]

    def get_latest_stream_time(self) -> datetime | None:
        return self.get_queryset().aggregate(v=models.Max(self.time_field))["v"]

    def get_stream_data(self, start: datetime, end: datetime) -> models.QuerySet[Any]:
        """The items with ``start <= time < end``, ordered by time (then primary key)."""
        return self.in_range(start, end).order_by(self.time_field, "pk")

    def in_range(self, start: datetime, end: datetime) -> models.QuerySet[Any]:
        """The items with ``start <= time < end``, unordered."""
        time = self.time_field
        return self.get_queryset().filter(**{f"{time}__gte": start, f"{time}__lt": end})

    def delete_before(self, cutoff_datetime: datetime | None) -> int:
        """Delete items before the cutoff, ``delete_chunk_size`` rows per statement."""
        if cutoff_datetime is None:
            return 0
        deleted = 0
        while True:
            chunk = self.delete_chunk(cutoff_datetime)
            deleted += chunk
            if chunk < self.delete_chunk_size:
                return deleted

    def delete_chunk(self, cutoff: datetime) -> int:
        """Delete up to ``delete_chunk_size`` items before ``cutoff``; return how many."""
        assert self.model is not None  # get_queryset() said so already
        keys = self._before(cutoff).order_by().values("pk")[: self.delete_chunk_size]
        with transaction.atomic():
            _, per_model = self.model._base_manager.filter(pk__in=keys).delete()
        return per_model.get(self.model._meta.label, 0)

    def count_before(self, cutoff_datetime: datetime | None) -> int:
        if cutoff_datetime is None:
            return 0
        return self._before(cutoff_datetime).count()

    def get_late_arrivals(
        self, arrived_after: datetime, arrived_until: datetime, time_before: datetime
    ) -> Iterable[tuple[datetime, datetime]]:
        """(time, arrival) of items that arrived in ``(arrived_after, arrived_until]``."""
        if not self.arrival_field:
            return super().get_late_arrivals(arrived_after, arrived_until, time_before)
        arrival = self.arrival_field
        return (
            self.get_queryset()
            .filter(
                **{
                    f"{arrival}__gt": arrived_after,
                    f"{arrival}__lte": arrived_until,
                    f"{self.time_field}__lt": time_before,
                }
            )
            .values_list(self.time_field, arrival)
        )

    @classmethod
    def reports_late_arrivals(cls) -> bool:
        """True when ``arrival_field`` is set."""
        return bool(cls.arrival_field)
