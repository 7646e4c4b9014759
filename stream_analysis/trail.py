"""The trail of recomputes: which frames were calculated again, when, why, and how often.

Each frame counts its own recomputes (``recomputes``, ``recomputed_at``,
``recompute_reason``, ``late_items``: fields of every ``BaseTimeFrame``), written
by the UPDATE that puts it back to pending, never by ``calculate()``. The
running totals per frame model and reason live in :class:`RecomputeTotal`
(in ``models``; the metrics' counters: they never go down, even when frames are
deleted).

Reasons:

========= ===================================================================
late      items arrived after the frame was calculated (``RECOMPUTE_LATE``);
          ``late_items`` counts them
recompute an operator's recompute (admin action, ``stream_analysis recompute``)
retry     an operator's retry of a failed frame
========= ===================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, models
from django.db.models.functions import Now

from . import grid, queries
from .models import RecomputeTotal

LATE = "late"
RECOMPUTE = "recompute"
RETRY = "retry"
REASONS = (LATE, RECOMPUTE, RETRY)


def put_back_fields(reason: str) -> dict[str, Any]:
    """The trail's values for an ``UPDATE`` that puts frames back to pending for ``reason``."""
    return {
        "recomputes": models.F("recomputes") + 1,
        "recomputed_at": Now(),
        "recompute_reason": reason,
    }


def late_items(
    arrivals: Iterable[tuple[datetime, datetime]], duration: timedelta, offset: timedelta
) -> tuple[list[datetime], list[datetime]]:
    """Per late item, its frame's start and its arrival time (two parallel lists)."""
    starts, arrived = [], []
    for moment, arrival in arrivals:
        starts.append(grid.frame_start(moment, duration, offset))
        arrived.append(grid.require_aware(arrival, "get_late_arrivals()"))
    return starts, arrived


def mark_late(
    frame_class: Any,
    arrivals: Iterable[tuple[datetime, datetime]],
    *,
    settle: timedelta,
    keep_from: datetime | None,
) -> tuple[int, int]:
    """Put back to pending the calculated frames that items arrived in after their calculation.

    One UPDATE whose cost follows the late items; each frame is marked at most
    once, counting its late items. Returns (frames marked, late items counted),
    both added to :class:`RecomputeTotal`.
    """
    starts, arrived = late_items(arrivals, frame_class.DURATION, frame_class.OFFSET)
    if not starts:
        return 0, 0
    params: dict[str, Any] = {
        "starts": starts,
        "arrived": arrived,
        "settle": settle,
        "keep_from": keep_from,
    }
    with connection.cursor() as cursor:
        cursor.execute(queries.query("mark_late_frames", frame_class), params)
        counted = [row[0] for row in cursor.fetchall()]
    RecomputeTotal.record(frame_class, LATE, len(counted), sum(counted))
    return len(counted), sum(counted)
