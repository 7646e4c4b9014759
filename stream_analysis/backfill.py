"""Backfill: create every missing frame over the whole stream, in one transaction.

The one backfill that ``manage.py backfill_analysis``, the benchmarks and
scripts call. Frames are inserted ``BACKFILL_CHUNK`` at a time with the
coordinator's own INSERT (ON CONFLICT DO NOTHING), so a backfill racing a tick
creates each frame once.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from . import coordinator, grid, operations, states, stream_clock
from .models import AnalysisTask, BaseTimeFrame

#: Frames inserted (or reset) per statement by a backfill; a progress bar's step.
BACKFILL_CHUNK = 10_000


def backfill_plan(frame_class: type[BaseTimeFrame]) -> grid.FrameRange | None:
    """Every closed frame over the whole stream, existing ones included (None: empty).

    Items beyond now + ``FUTURE_TOLERANCE`` are not followed, as in a tick.
    """
    stream = frame_class.get_stream()
    bounds = coordinator.stream_bounds(stream)
    if bounds is not None:
        bounds = stream_clock.trusted_bounds(stream, bounds, timezone.now())
    if bounds is None:
        return None
    return grid.backfill_frames(
        duration=frame_class.DURATION,
        earliest=bounds[0],
        latest=bounds[1],
        offset=frame_class.OFFSET,
        lateness=frame_class.LATENESS,
    )


def backfill_range(
    frame_class: type[BaseTimeFrame],
    planned: grid.FrameRange,
    *,
    force: bool = False,
    progress: Callable[[int], object] | None = None,
) -> tuple[int, int]:
    """Create the missing frames of ``planned`` (``force``: re-queue done ones), atomically.

    Works ``BACKFILL_CHUNK`` frames per statement and calls ``progress`` with the
    number of frames each statement covered. Everything is one transaction (a
    savepoint inside the caller's): an interrupt rolls all of it back.

    Returns (frames created, frames reset to pending).
    """
    created = reset = 0
    with transaction.atomic():
        for chunk in planned.chunks(BACKFILL_CHUNK):
            created += coordinator.insert_frames(frame_class, chunk)
            if force:
                done = frame_class._default_manager.filter(
                    states.CALCULATED | states.FAILED,
                    start_time__range=(chunk.first, chunk.last),
                )
                reset += operations.reset_to_pending(done)
            if progress is not None:
                progress(chunk.count)
    return created, reset


def backfill(task: AnalysisTask, *, force: bool = False) -> tuple[int, int]:
    """Create every missing frame over the whole stream; ``force`` re-queues done ones.

    Recomputed frames read the data still stored: a frame whose items were partly
    deleted by ``cleanup_streams`` gets a partial result.

    Returns (frames created, frames reset to pending).
    """
    frame_class = task.get_frame_class()
    planned = backfill_plan(frame_class)
    if planned is None:
        return 0, 0
    return backfill_range(frame_class, planned, force=force)
