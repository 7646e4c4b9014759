"""The trail of recomputes: which frames were calculated again, when, why, and how often.

Each frame counts its own recomputes (``recomputes``, ``recomputed_at``,
``recompute_reason``, ``late_items``: fields of every ``BaseTimeFrame``), written
by the UPDATE that puts it back to pending, never by ``calculate()``. The
running totals per frame model and reason live in :class:`RecomputeTotal`
(the metrics' counters: they never go down, even when frames are deleted).

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

LATE = "late"
RECOMPUTE = "recompute"
RETRY = "retry"
REASONS = (LATE, RECOMPUTE, RETRY)


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
        app_label = "stream_analysis"
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
