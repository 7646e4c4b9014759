"""Admin for analysis tasks and, through :class:`BaseTimeFrameAdmin`, time frames.

Register a frame model with one line::

    admin.site.register(MyTimeFrame, BaseTimeFrameAdmin)

Everything here is for staff only. Starting and stopping a task needs the
``stream_analysis.change_analysistask`` permission; retrying and recomputing
frames needs the change permission on that frame model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.defaultfilters import pluralize
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.utils.html import format_html

from .. import operations, states, status
from ..exceptions import MissingDataError
from ..models import AnalysisTask, BaseTimeFrame
from . import chart
from .results import ResultsAdminMixin

STATUS_LABELS = {
    "pending": "pending (not tried yet)",
    "retrying": "retrying (failed, will retry)",
    "stale": "stale (calculated, to recompute)",
    "calculated": "calculated",
    "failed": "failed (no retry left)",
}


class FrameStatusFilter(admin.SimpleListFilter):
    """Filter frames by their ``status``: pending, retrying, stale, calculated or failed."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(STATUS_LABELS.items())

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value not in states.STATUSES:
            return queryset
        return queryset.filter(states.STATUSES[value])


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on one condition of the frame's trail (see ``stream_analysis.trail``)."""

    condition: Q

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "yes"), ("no", "no")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(self.condition)
        if self.value() == "no":
            return queryset.exclude(self.condition)
        return queryset


class RecomputedFilter(YesNoFilter):
    """Frames calculated again at least once (late items, recompute, retry)."""

    title = "recomputed"
    parameter_name = "recomputed"
    condition = states.RECOMPUTED


class LateItemsFilter(YesNoFilter):
    """Frames that items arrived in after they were calculated."""

    title = "had late items"
    parameter_name = "late_items"
    condition = Q(late_items__gt=0)


def frames(count: int) -> str:
    return f"{count} frame{pluralize(count)}"


class BaseTimeFrameAdmin(ResultsAdminMixin, admin.ModelAdmin):
    """Frames of one model: status, timings, attempts, last traceback; retry and recompute;
    its results page (a chart of any numeric field, CSV and JSON exports).

    Frames are created by the coordinator only (no "add"). The status fields
    are read-only; the actions put frames back to pending with one UPDATE that
    is safe while workers are calculating (see :mod:`stream_analysis.operations`).
    """

    list_display = [
        "start_time",
        "end_time",
        "status",
        "analysis_time",
        "cleanup_time",
        "attempts",
        "missing_data",
        "recomputes",
        "late_items",
    ]
    list_filter = [FrameStatusFilter, "missing_data", RecomputedFilter, LateItemsFilter]
    date_hierarchy = "start_time"
    ordering = ["-start_time"]
    exclude = ["last_error"]
    readonly_fields = [
        "start_time",
        "status",
        "calculated",
        "failed",
        "missing_data",
        "calculated_at",
        "analysis_time",
        "cleanup_time",
        "attempts",
        "next_attempt_at",
        "traceback",
        "recomputes",
        "recomputed_at",
        "recompute_reason",
        "late_items",
    ]
    actions = ["retry_failed_frames", "recompute_frames"]
    change_list_template = "admin/stream_analysis/frame_change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # frames are created by the coordinator only

    def get_urls(self) -> list[URLPattern]:
        return [*self.results_urls(), *super().get_urls()]

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # Django's date hierarchy adds a day, a month or a year to the date in the
        # URL: in 9999 that overflows (OverflowError, or ValueError for the year).
        # Treat it as the bad lookup it is (the admin redirects to the list with
        # ?e=1) rather than as a server error.
        try:
            return super().get_changelist_instance(request)
        except (OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc

    @admin.display(description="last error")
    def traceback(self, frame: BaseTimeFrame) -> str:
        if not frame.last_error:
            return self.get_empty_value_display()
        return format_html(
            '<pre class="traceback" style="white-space: pre-wrap; margin: 0">{}</pre>',
            frame.last_error,
        )

    @admin.action(permissions=["change"], description="Retry failed frames")
    def retry_failed_frames(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = operations.retry_failed(self.model, queryset)
        self.message_user(request, f"{frames(count)} put back to pending (failed ones only).")
        self.warn_if_not_running(request, count)

    @admin.action(permissions=["change"], description="Recompute selected frames")
    def recompute_frames(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """Show how many frames would be reset (and how many may lack data); act once confirmed."""
        if request.POST.get("confirm") != "yes":
            return self.recompute_confirmation(request, queryset)
        allow = request.POST.get("allow_missing_data") == "yes"
        try:
            count = operations.recompute(self.model, queryset, allow_missing_data=allow)
        except MissingDataError as exc:
            self.message_user(request, f"Nothing recomputed. {exc}", messages.ERROR)
            return None
        self.message_user(request, f"{frames(count)} put back to pending, to be recomputed.")
        self.warn_if_not_running(request, count)
        return None

    def recompute_confirmation(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Recompute frames?",
            "opts": self.model._meta,
            "plan": operations.recompute_plan(self.model, queryset),
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        }
        return TemplateResponse(
            request, "admin/stream_analysis/recompute_confirmation.html", context
        )

    def warn_if_not_running(self, request: HttpRequest, count: int) -> None:
        """Say so when no running task will calculate the frames just reset."""
        if not count or any(task.is_running for task in operations.tasks_using(self.model)):
            return
        self.message_user(
            request,
            f"No running task calculates {self.model.__name__}: start its task to "
            "calculate these frames.",
            messages.WARNING,
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Only what was edited here: a worker may have stored this frame since the
        # form was read, and save() of every column would overwrite its results.
        columns = {field.name for field in obj._meta.concrete_fields}
        obj.save(update_fields=[name for name in form.changed_data if name in columns])


@admin.register(AnalysisTask)
class AnalysisTaskAdmin(admin.ModelAdmin):
    """One row per configured task, with its status; start and stop; a chart per task."""

    list_display = [
        "name",
        "key",
        "is_running",
        "duration",
        "done",
        "pending",
        "failed",
        "newest_calculated_end",
        "lag",
        "avg_analysis_time",
        "avg_cleanup_time",
        "cutoff",
    ]
    list_display_links = ["name"]
    readonly_fields = [
        "key",
        "running",
        "last_tick_at",
        "rearm_at",
        "stream_latest",
        "stream_latest_seen_at",
        "late_checked_at",
    ]
    actions = ["start_tasks", "stop_tasks"]
    #: Buckets in the task page's chart of frames per status.
    chart_buckets = 60

    def get_queryset(self, request: HttpRequest) -> QuerySet[AnalysisTask]:
        # One row per configured task: rows are made on first use, and a row
        # whose task was removed from settings has no configuration to show.
        configured = [task.key for task in AnalysisTask.get()]
        return super().get_queryset(request).filter(key__in=configured)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tasks come from ANALYSIS_TIME_FRAME_TASKS

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the row is the task's state; stop the task instead

    # -- columns ----------------------------------------------------------------

    def task_status(self, task: AnalysisTask) -> status.TaskStatus:
        """The task's status, computed once per row (every column reads it)."""
        cached = getattr(task, "_admin_status", None)
        if cached is None:
            cached = status.task_status(task)
            task._admin_status = cached  # type: ignore[attr-defined]
        return cached

    @admin.display(boolean=True, description="running")
    def is_running(self, task: AnalysisTask) -> bool:
        return self.task_status(task).running

    @admin.display(description="duration")
    def duration(self, task: AnalysisTask) -> Any:
        return self.task_status(task).duration

    @admin.display(description="done")
    def done(self, task: AnalysisTask) -> int:
        return self.task_status(task).done

    @admin.display(description="pending")
    def pending(self, task: AnalysisTask) -> int:
        return self.task_status(task).pending

    @admin.display(description="failed")
    def failed(self, task: AnalysisTask) -> int:
        return self.task_status(task).failed

    @admin.display(description="newest calculated frame ends")
    def newest_calculated_end(self, task: AnalysisTask) -> Any:
        return self.task_status(task).newest_calculated_end

    @admin.display(description="lag (s)")
    def lag(self, task: AnalysisTask) -> str | None:
        return seconds(self.task_status(task).lag_seconds, 1)

    @admin.display(description="avg analysis (s)")
    def avg_analysis_time(self, task: AnalysisTask) -> str | None:
        return seconds(self.task_status(task).avg_analysis_time, 3)

    @admin.display(description="avg cleanup (s)")
    def avg_cleanup_time(self, task: AnalysisTask) -> str | None:
        return seconds(self.task_status(task).avg_cleanup_time, 3)

    @admin.display(description="stream cutoff")
    def cutoff(self, task: AnalysisTask) -> Any:
        return self.task_status(task).cutoff

    # -- start and stop ---------------------------------------------------------

    @admin.action(permissions=["change"], description="Start selected tasks")
    def start_tasks(self, request: HttpRequest, queryset: QuerySet[AnalysisTask]) -> None:
        for task in queryset:
            task.schedule()
        self.message_user(request, f"Started: {', '.join(t.name for t in queryset)}.")

    @admin.action(permissions=["change"], description="Stop selected tasks")
    def stop_tasks(self, request: HttpRequest, queryset: QuerySet[AnalysisTask]) -> None:
        for task in queryset:
            task.cancel()
        self.message_user(request, f"Stopped: {', '.join(t.name for t in queryset)}.")

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/start/", wrap(self.start_view), name=f"{name}_start"),
            path("<path:object_id>/stop/", wrap(self.stop_view), name=f"{name}_stop"),
            *super().get_urls(),
        ]

    def start_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: start the task (the task page's Start button)."""
        return self.switch(request, object_id, AnalysisTask.schedule, "started")

    def stop_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """POST: stop the task (the task page's Stop button)."""
        return self.switch(request, object_id, AnalysisTask.cancel, "stopped")

    def switch(
        self,
        request: HttpRequest,
        object_id: str,
        method: Callable[[AnalysisTask], bool],
        done: str,
    ) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        task = self.get_object(request, unquote(object_id))
        if task is None:
            raise Http404(f"No configured analysis task with id {object_id!r}.")
        method(task)
        self.message_user(request, f"{task.name} {done}.")
        return redirect(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change", quote(task.pk)
        )

    # -- the task page ------------------------------------------------------------

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: AnalysisTask | None = None,
    ) -> HttpResponse:
        # The admin has read the task and checked the view or change permission.
        if obj is not None:
            context.update(self.task_page_context(request, obj))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def task_page_context(self, request: HttpRequest, task: AnalysisTask) -> dict[str, Any]:
        frame_class = task.get_frame_class()
        width = chart.bucket_width(frame_class.DURATION)
        buckets = chart.frame_history(frame_class, count=self.chart_buckets, width=width)
        return {
            "task_status": self.task_status(task),
            "chart": chart.chart(buckets, width),
            "chart_colours": chart.STATUSES,
            "frames_url": self.frames_url(frame_class),
            "can_start_stop": self.has_change_permission(request, task),
        }

    def frames_url(self, frame_class: type[BaseTimeFrame]) -> str | None:
        """The frame model's admin list, if it is registered on this site."""
        opts = frame_class._meta
        try:
            return reverse(
                f"admin:{opts.app_label}_{opts.model_name}_changelist",
                current_app=self.admin_site.name,
            )
        except NoReverseMatch:
            return None


def seconds(value: float | None, digits: int) -> str | None:
    return None if value is None else f"{value:.{digits}f}"
