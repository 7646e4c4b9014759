"""Deleting stream data that every task using the stream has analysed."""

from __future__ import annotations

import logging
from datetime import datetime

from . import frames
from .models import AnalysisTask
from .streams import AbstractStream

logger = logging.getLogger(__name__)


def get_stream_cutoff_times() -> dict[type[AbstractStream], datetime | None]:
    """Per stream class, the earliest time any task using it still needs.

    The minimum over every configured task whose frames read that stream (running
    or not: a stopped task still needs its data); a task that needs everything
    (None) keeps everything.
    """
    pairs = []
    for task in AnalysisTask.get():
        frame_class = task.get_frame_class()
        pairs.append((frame_class.STREAM_CLASS, frame_class.get_stream_memory_cutoff()))
    return frames.combine_cutoffs(pairs)


def cleanup() -> int:
    """Delete analysed stream data from every stream; return the rows deleted."""
    total = 0
    for stream_class, cutoff in get_stream_cutoff_times().items():
        if cutoff is None:
            logger.info(
                "kept all of %s: a task still needs every item",
                stream_class.__name__,
                extra={"action": "cleanup", "stream": stream_class.__name__},
            )
            continue
        deleted = stream_class().delete_before(cutoff)
        logger.info(
            "deleted %d items before %s from %s",
            deleted,
            cutoff,
            stream_class.__name__,
            extra={"action": "cleanup", "stream": stream_class.__name__, "deleted": deleted},
        )
        total += deleted
    return total
