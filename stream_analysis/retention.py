"""Deleting stream data that every task using the stream has analysed."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from . import grid, queries, signals
from .exceptions import ConfigurationError
from .models import AnalysisTask, CleanupTotal
from .streams import AbstractStream

logger = logging.getLogger(__name__)


def get_stream_cutoff_times() -> dict[type[AbstractStream], datetime | None]:
    """Per stream class, the earliest time any task using it still needs.

    The minimum over every configured task whose frames read that stream (running
    or not: a stopped task still needs its data); a task that needs everything
    (None) keeps everything. Stream classes that read the same data (the same
    ``data_key()``: two ModelStreams over one model, say) all get the minimum
    over every one of them, so that none deletes what another still needs.
    """
    pairs = []
    for task in AnalysisTask.get():
        frame_class = task.get_frame_class()
        pairs.append((frame_class.STREAM_CLASS, frame_class.get_stream_memory_cutoff()))
    per_class = grid.combine_cutoffs(pairs)
    per_data = grid.combine_cutoffs(
        (stream_class.data_key(), cutoff) for stream_class, cutoff in per_class.items()
    )
    return {stream_class: per_data[stream_class.data_key()] for stream_class in per_class}


def cleanup() -> int:
    """Delete analysed stream data from every stream; return the rows deleted.

    Each stream's run is added to its :class:`~stream_analysis.models.CleanupTotal`
    (read by the metrics).
    """
    total = 0
    for stream_class, cutoff in get_stream_cutoff_times().items():
        if cutoff is None:
            logger.info(
                "kept all of %s: a task still needs every item",
                stream_class.__name__,
                extra={"action": "cleanup", "stream": stream_class.__name__},
            )
            CleanupTotal.record(stream_class, 0, timezone.now())
            continue
        deleted = stream_class().delete_before(cutoff)
        CleanupTotal.record(stream_class, deleted, timezone.now())
        logger.info(
            "deleted %d items before %s from %s",
            deleted,
            cutoff,
            stream_class.__name__,
            extra={"action": "cleanup", "stream": stream_class.__name__, "deleted": deleted},
        )
        total += deleted
    return total


def delay() -> None:
    """The original's ``stream_analysis.cleanup.delay()``: queue one cleanup for a worker.

    Deprecated: it returned an RQ job; here it returns None. The worker runs the
    ``cleanup_streams`` actor, once the current transaction commits.
    """
    warnings.warn(
        "stream_analysis.cleanup.delay() is deprecated (there is no RQ job): send the "
        "cleanup actor with actors.tasks.cleanup_streams.send(), or call "
        "stream_analysis.cleanup() to clean up in this process.",
        DeprecationWarning,
        stacklevel=2,
    )
    if not signals.cleanup_requested.send(sender=None):
        raise ConfigurationError(
            "stream_analysis.cleanup.delay() needs the worker runtime: add 'actors' to "
            "INSTALLED_APPS (after 'django_dramatiq'), or call stream_analysis.cleanup()."
        )


cleanup.delay = delay  # type: ignore[attr-defined]  # the original's RQ-job spelling


@dataclass(frozen=True)
class StreamCleanup:
    """What ``cleanup()`` would do to one stream: its cutoff and the items before it."""

    stream_class: type[AbstractStream]
    #: Items before this time would be deleted; None keeps every item.
    cutoff: datetime | None
    #: How many items ``delete_before(cutoff)`` would delete (``count_before``).
    count: int


def preview_cleanup() -> list[StreamCleanup]:
    """Per stream class, the cutoff and how many items ``cleanup()`` would delete now.

    Deletes nothing (it calls the streams' ``count_before``). The numbers may be
    stale by the time a cleanup runs: workers move the cutoffs forward.
    """
    return [
        StreamCleanup(stream_class, cutoff, stream_class().count_before(cutoff))
        for stream_class, cutoff in get_stream_cutoff_times().items()
    ]


#: Advisory-lock key of the stream cleanup (one at a time, whatever the process).
CLEANUP_LOCK = grid.lock_key("cleanup", "streams")


def cleanup_exclusively() -> int | None:
    """``cleanup()``, unless another process runs one right now: then None, at once.

    For periodic runs: two schedulers, or a run that outlasts its period, must
    not delete the same rows side by side (concurrent deletes of one set of rows
    may deadlock). The whole run is one transaction holding a transaction-scoped
    advisory lock, released at its end or when a killed worker's connection
    closes. A session lock would not do behind PgBouncer in transaction pooling:
    taken on one server connection, it could be released on another (and left
    held), and two clients sharing a server connection would both get it.
    """
    with transaction.atomic():
        if not queries.fetch_value("try_transaction_lock", {"key": CLEANUP_LOCK}):
            logger.info(
                "another cleanup is running: skipped",
                extra={"action": "cleanup", "skipped": True},
            )
            return None
        return cleanup()
