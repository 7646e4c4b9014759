"""Operator actions on frames: retry the failed ones, recompute any.

Shared by the admin and the management commands. Each action is one UPDATE,
safe while workers are calculating: a frame a worker holds is locked (``FOR
UPDATE``) until the worker's transaction ends, so the UPDATE waits for that
commit and then applies to the row as committed. A frame being calculated is
therefore calculated once more afterwards, never lost or left half-reset.
Because it waits, an action on a frame being calculated lasts until that
worker's batch commits (at most about ``STREAM_ANALYSIS_TIME_BUDGET`` plus one
frame).

A recomputed frame runs ``calculate()`` again on the stream data still stored:
frames older than the stream's cleanup cutoff get a partial result, and
``calculate()`` must replace, not add to, what an earlier run wrote.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import models, transaction

from . import signals, states, trail
from .models import AnalysisTask, BaseTimeFrame

logger = logging.getLogger(__name__)

#: The values of a frame that is due again and has never been tried since.
PENDING = {"calculated": False, "failed": False, "attempts": 0, "next_attempt_at": None}


def reset_to_pending(frames: models.QuerySet[Any], reason: str = trail.RECOMPUTE) -> int:
    """Put ``frames`` back to pending, attempts and last error cleared, in one UPDATE.

    The frames' trail counts it as a recompute for ``reason`` (a ``trail`` reason).
    Returns how many frames were reset. Ticks nothing: see :func:`recompute`.
    """
    with transaction.atomic():
        count = frames.update(**PENDING, last_error="", **trail.put_back_fields(reason))
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


def recompute(
    frame_class: type[BaseTimeFrame], queryset: models.QuerySet[Any] | None = None
) -> int:
    """Put every frame of ``queryset`` (default: all) back to pending, whatever its status.

    A calculated frame keeps its results and ``calculated_at`` until it is
    calculated again (its status reads 'stale' meanwhile). Returns how many
    frames were reset; the tasks using ``frame_class`` are ticked.
    """
    count = reset_to_pending(_frames(frame_class, queryset))
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
