"""What a task looks like right now: counts, lag, timings. Shared by the admin,
``manage.py stream_analysis status`` and the metrics."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import models

from . import rollups, states, trail
from .coordinator import stream_latest
from .models import AnalysisTask

#: The permission that lets a staff user read the tasks' status outside the admin
#: (the metrics view, a dashboard), as the admin's task list needs it too.
VIEW_PERMISSION = "stream_analysis.view_analysistask"


@dataclass(frozen=True)
class TaskStatus:
    """One task's numbers. Times are aware datetimes; durations are seconds."""

    key: str
    name: str
    running: bool
    duration: timedelta
    done: int
    pending: int
    failed: int
    newest_calculated_end: datetime | None
    stream_latest: datetime | None
    #: Stream latest time minus the end of the newest calculated frame (seconds).
    lag_seconds: float | None
    avg_analysis_time: float | None
    avg_cleanup_time: float | None
    #: Stream data before this time may be deleted by cleanup (None: keep all).
    cutoff: datetime | None
    last_tick_at: datetime | None
    #: A rollup's oldest source frame not calculated, which its frames cannot pass.
    held_back_by: str | None = None
    #: Frames put back to be calculated again, ever, by reason (late, recompute, retry).
    recomputes: dict[str, int] = field(default_factory=dict)
    #: Late items that made frames be recomputed, ever.
    late_items: int = 0

    def as_json(self) -> dict[str, Any]:
        """The status as JSON-ready values (ISO 8601 times, seconds)."""
        data = asdict(self)
        data["duration"] = self.duration.total_seconds()
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


def count_expressions() -> dict[str, models.Count]:
    """``done``, ``pending`` (including retrying and stale) and ``failed`` as aggregates."""
    return {
        "done": models.Count("pk", filter=states.CALCULATED),
        "pending": models.Count("pk", filter=states.UNFINISHED),
        "failed": models.Count("pk", filter=states.FAILED),
    }


def frame_counts(frame_class: Any) -> dict[str, int]:
    """Frames done, pending (including retrying and stale) and failed, in one query."""
    return frame_class._default_manager.aggregate(**count_expressions())


def task_status(task: AnalysisTask) -> TaskStatus:
    """Compute ``task``'s status (a handful of indexed queries and one count)."""
    frame_class = task.get_frame_class()
    newest = frame_class._default_manager.filter(states.CALCULATED).aggregate(
        v=models.Max("start_time")
    )["v"]
    newest_end = None if newest is None else newest + frame_class.DURATION
    latest = stream_latest(frame_class.get_stream())
    lag = None
    if latest is not None and newest_end is not None:
        lag = (latest - newest_end).total_seconds()
    stats = frame_class.get_performance_stats()
    recomputes, late_items = recompute_totals(frame_class)
    return TaskStatus(
        key=task.key,
        name=task.name,
        running=task.is_running,
        duration=frame_class.DURATION,
        **frame_counts(frame_class),
        newest_calculated_end=newest_end,
        stream_latest=latest,
        lag_seconds=lag,
        avg_analysis_time=stats["analysis_time"],
        avg_cleanup_time=stats["cleanup_time"],
        cutoff=frame_class.get_stream_memory_cutoff(),
        last_tick_at=task.last_tick_at,
        held_back_by=rollups.describe_hold(rollups.held_back_by(frame_class)),
        recomputes=recomputes,
        late_items=late_items,
    )


def recompute_totals(frame_class: Any) -> tuple[dict[str, int], int]:
    """``recomputes`` (by reason) and ``late_items`` of ``frame_class``, ever (one query)."""
    rows = trail.RecomputeTotal.objects.filter(
        frame_model=trail.RecomputeTotal.label(frame_class)
    ).values_list("reason", "frames", "late_items")
    recomputes = {reason: 0 for reason in trail.REASONS}
    late_items = 0
    for reason, frames, items in rows:
        recomputes[reason] = frames
        late_items += items
    return recomputes, late_items


def all_statuses() -> list[TaskStatus]:
    """The status of every configured task, by key."""
    return [task_status(task) for task in AnalysisTask.get()]
