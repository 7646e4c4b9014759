"""Admin for analysis tasks and, through :class:`BaseTimeFrameAdmin`, time frames.

Register a frame model with one line::

    admin.site.register(MyTimeFrame, BaseTimeFrameAdmin)
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import AnalysisTask


class BaseTimeFrameAdmin(admin.ModelAdmin):
    """Read-mostly list of a frame model: status, timings, attempts, last error."""

    list_display = [
        "start_time",
        "end_time",
        "status",
        "analysis_time",
        "cleanup_time",
        "attempts",
        "missing_data",
    ]
    list_filter = ["calculated", "failed", "missing_data", "start_time"]
    date_hierarchy = "start_time"
    ordering = ["-start_time"]
    readonly_fields = [
        "start_time",
        "calculated",
        "failed",
        "calculated_at",
        "analysis_time",
        "cleanup_time",
        "attempts",
        "next_attempt_at",
        "last_error",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # frames are created by the coordinator only


@admin.register(AnalysisTask)
class AnalysisTaskAdmin(admin.ModelAdmin):
    list_display = ["key", "name", "is_running", "duration", "done", "pending", "failed"]
    readonly_fields = ["key", "rearm_at", "last_tick_at"]

    @admin.display(boolean=True, description="running")
    def is_running(self, task: AnalysisTask) -> bool:
        return task.is_running

    @admin.display(description="duration")
    def duration(self, task: AnalysisTask) -> Any:
        return task.get_frame_class().DURATION

    @admin.display(description="done")
    def done(self, task: AnalysisTask) -> int:
        return task.get_frame_class().count_completed()

    @admin.display(description="pending")
    def pending(self, task: AnalysisTask) -> int:
        return task.get_frame_class().due_frames().count()

    @admin.display(description="failed")
    def failed(self, task: AnalysisTask) -> int:
        return task.get_frame_class()._default_manager.filter(failed=True).count()

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnalysisTask]:
        # One row per configured task: rows are made on first use, and a row
        # whose task was removed from settings has no configuration to show.
        configured = [task.key for task in AnalysisTask.get()]
        return super().get_queryset(request).filter(key__in=configured)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks come from ANALYSIS_TIME_FRAME_TASKS
