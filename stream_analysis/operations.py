"""Operator actions on frames: retry the failed ones, recompute any.

Shared by the admin and the management commands. Each action is one UPDATE,
safe while workers are calculating: a frame a worker holds is locked (``FOR
UPDATE``) until the worker's transaction ends, so the UPDATE waits for that
commit and then applies to the row as committed. A frame being calculated is
therefore calculated once more afterwards, never lost or left half-reset.
Because it waits, an action on a frame being calculated lasts until that
worker's batch commits (at most about ``STREAM_ANALYSIS_TIME_BUDGET`` plus one
frame).

A recomputed frame runs ``calculate()`` again on the stream data still stored,
and ``calculate()`` must replace, not add to, what an earlier run wrote. A
frame that starts before the stream's earliest stored item may have lost its
data to a cleanup: :func:`recompute` refuses such frames
(:class:`~stream_analysis.exceptions.MissingDataError`) unless told to accept
them, and then marks them ``missing_data``. :func:`recompute_plan` says what a
recompute would change without changing it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import models, transaction

from . import grid, signals, states, trail
from .exceptions import MissingDataError
from .models import AnalysisTask, BaseTimeFrame

logger = logging.getLogger(__name__)

#: The values of a frame that is due again and has never been tried since.
PENDING = {"calculated": False, "failed": False, "attempts": 0, "next_attempt_at": None}


def reset_to_pending(
    frames: models.QuerySet[Any], reason: str = trail.RECOMPUTE, **values: Any
) -> int:
    """Put ``frames`` back to pending, attempts and last error cleared, in one UPDATE.

    The frames' trail counts it as a recompute for ``reason`` (a ``trail`` reason);
    ``values`` are more fields to set in the same UPDATE. Returns how many frames
    were reset. Ticks nothing: see :func:`recompute`.
    """
    with transaction.atomic():
        count = frames.update(**PENDING, last_error="", **trail.put_back_fields(reason), **values)
        trail.RecomputeTotal.record(frames.model, reason, count)
    return count


def retry_failed(
    frame_class: type[BaseTimeFrame], queryset: models.QuerySet[Any] | None = None
) -> int:
    """Put the failed frames of ``queryset`` (default: all) back to pending, attempts reset.

    Frames that are not failed are left alone, also one that a worker commits as
    calculated while this waits for its lock. Returns how many frames were reset;
    the tasks using ``frame_class`` are ticked so that workers pick them up now.
    """
    frames = _frames(frame_class, queryset).filter(states.FAILED)
    count = reset_to_pending(frames, trail.RETRY)
    _changed(frame_class, count, "retry_failed")
    return count


@dataclass(frozen=True)
class RecomputePlan:
    """What :func:`recompute` would do to a set of frames."""

    #: Frames that would be put back to pending.
    frames: int
    #: Of those, frames calculated now (their results are replaced).
    calculated: int
    #: Of those, frames that start before ``complete_from``: their data may be gone.
    missing_data: int
    #: Frames starting before this time may have lost stream data (None: none can have).
    complete_from: datetime | None


def data_complete_from(frame_class: type[BaseTimeFrame]) -> datetime | None:
    """The start of the first frame whose stream data is surely all stored, or None.

    Cleanup deletes items before a cutoff and keeps the rest, so a frame that
    starts before the frame of the stream's earliest stored item may have lost
    items; one that starts at or after it has not. With the stream empty, every
    existing frame may have lost its data. None: no frame exists.
    """
    stream = frame_class.get_stream()
    earliest = None if stream.is_stream_empty() else stream.get_earliest_stream_time()
    if earliest is None:
        return frame_class.get_latest_end_time()
    return grid.frame_start(earliest, frame_class.DURATION, frame_class.OFFSET)


def recompute_plan(
    frame_class: type[BaseTimeFrame], queryset: models.QuerySet[Any] | None = None
) -> RecomputePlan:
    """Count what :func:`recompute` of ``queryset`` (default: all) would change; change nothing."""
    frames = _frames(frame_class, queryset)
    complete_from = data_complete_from(frame_class)
    missing = models.Q(start_time__lt=complete_from) if complete_from else models.Q(pk__in=[])
    counts = frames.aggregate(
        frames=models.Count("pk"),
        calculated=models.Count("pk", filter=states.CALCULATED),
        missing_data=models.Count("pk", filter=missing),
    )
    return RecomputePlan(complete_from=complete_from, **counts)


def recompute(
    frame_class: type[BaseTimeFrame],
    queryset: models.QuerySet[Any] | None = None,
    *,
    allow_missing_data: bool = False,
) -> int:
    """Put every frame of ``queryset`` (default: all) back to pending, whatever its status.

    A calculated frame keeps its results and ``calculated_at`` until it is
    calculated again (its status reads 'stale' meanwhile). Frames that start
    before :func:`data_complete_from` may have lost their stream data: they are
    refused (:class:`MissingDataError`, nothing changed), or with
    ``allow_missing_data`` recomputed and marked ``missing_data``. Returns how
    many frames were reset; the tasks using ``frame_class`` are ticked.
    """
    frames = _frames(frame_class, queryset)
    complete_from = data_complete_from(frame_class)
    with transaction.atomic():
        if complete_from is None:
            at_risk, intact = frames.none(), frames
        else:
            at_risk = frames.filter(start_time__lt=complete_from)
            intact = frames.filter(start_time__gte=complete_from)
        if not allow_missing_data and at_risk.exists():
            raise MissingDataError(frame_class, at_risk.count(), complete_from)
        marked = reset_to_pending(at_risk, missing_data=True)
        count = marked + reset_to_pending(intact)
    _changed(frame_class, count, "recompute")
    return count


def tasks_using(frame_class: type[BaseTimeFrame]) -> list[AnalysisTask]:
    """The configured tasks whose frame model is ``frame_class``."""
    return [task for task in AnalysisTask.get() if task.get_frame_class() is frame_class]


def request_ticks(frame_class: type[BaseTimeFrame]) -> list[AnalysisTask]:
    """Ask the runtime to tick every task using ``frame_class`` now (after commit).

    A stopped task is not started: its frames wait until it is.
    """
    tasks = tasks_using(frame_class)
    for task in tasks:
        signals.tick_requested.send(sender=AnalysisTask, task=task)
    return tasks


def _frames(
    frame_class: type[BaseTimeFrame], queryset: models.QuerySet[Any] | None
) -> models.QuerySet[Any]:
    if queryset is None:
        return frame_class._default_manager.all()
    if queryset.model is not frame_class:
        raise TypeError(f"Expected a queryset of {frame_class.__name__}, got {queryset.model}.")
    return queryset


def _changed(frame_class: type[BaseTimeFrame], count: int, action: str) -> None:
    if not count:
        return
    logger.info(
        "%s: %d %s frames back to pending",
        action,
        count,
        frame_class.__name__,
        extra={"action": action, "frame_class": frame_class.__name__, "frames": count},
    )
    request_ticks(frame_class)
