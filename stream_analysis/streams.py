"""The stream interface: how this app reads and trims a user's streaming data."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sized
from datetime import datetime
from typing import Any


class AbstractStream(ABC):
    """Access to one source of timestamped items, for example a table of tweets.

    Subclass it and implement the four reading methods. ``delete_before`` and
    ``count_before`` are optional, as in the original: by default nothing is ever
    deleted (and 0 is returned), so the stream grows until you implement them.
    All datetimes must be timezone-aware.
    An instance is created (with no arguments) each time the app needs the stream,
    so keep ``__init__`` cheap and stateless.
    """

    @abstractmethod
    def is_stream_empty(self) -> bool:
        """True when the stream holds no item at all."""

    @abstractmethod
    def get_earliest_stream_time(self) -> datetime | None:
        """Timestamp of the oldest item still stored (None if empty)."""

    @abstractmethod
    def get_latest_stream_time(self) -> datetime | None:
        """Timestamp of the newest item (None if empty).

        A frame is created once this time has reached the frame's end, so it is
        the stream's clock: items older than it should already be stored.
        """

    @abstractmethod
    def get_stream_data(self, start: datetime, end: datetime) -> Sized | Any:
        """The items with ``start <= time < end``, passed to ``calculate()`` as is.

        A queryset is ideal: it is evaluated inside the frame's transaction.
        """

    def delete_before(self, cutoff_datetime: datetime | None) -> int:
        """Delete items with time strictly before ``cutoff_datetime``; return how many.

        ``None`` means "keep everything": delete nothing and return 0. Items *at*
        the cutoff belong to a frame that may not be calculated yet: keep them
        (use ``__lt``, not ``__lte``). Default (the original's): delete nothing, 0.
        """
        return 0

    def count_before(self, cutoff_datetime: datetime | None) -> int:
        """How many items ``delete_before(cutoff_datetime)`` would delete.

        Default (the original's): 0, matching the default ``delete_before``.
        """
        return 0

    def get_late_arrivals(
        self, arrived_after: datetime, arrived_until: datetime, time_before: datetime
    ) -> Iterable[tuple[datetime, datetime]]:
        """(item time, arrival time) of items that arrived in ``(arrived_after, arrived_until]``
        (wall clock) with an item time before ``time_before``. Optional.

        Only frames with ``RECOMPUTE_LATE = True`` call it, once per tick, to find
        frames that were calculated before some of their items arrived. It needs
        an arrival timestamp stored with each item (say an indexed ``ingested_at``
        set to ``timezone.now()`` on insert); its cost is then one index range scan
        over the items that arrived since the last tick, whatever the number of
        frames. Return an iterable of pairs, such as ``values_list()``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement get_late_arrivals(), which "
            "RECOMPUTE_LATE = True needs."
        )

    #: What the stream reads, for cleanup: streams with the same ``DATA`` (say, two
    #: stream classes over one table) are each cleaned only up to the earliest time
    #: any task using any of them still needs, so one never deletes items another
    #: has not analysed. None (the default): the stream class is its own data.
    #: :class:`ModelStream` uses its model.
    DATA: Any = None

    @classmethod
    def data_key(cls) -> Any:
        """``DATA``, or the class itself when it is not set (see ``DATA``)."""
        return cls if cls.DATA is None else cls.DATA

    @classmethod
    def reports_late_arrivals(cls) -> bool:
        """True when the class implements :meth:`get_late_arrivals`."""
        return cls.get_late_arrivals is not AbstractStream.get_late_arrivals
