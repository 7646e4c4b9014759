"""The demo's live dashboard: a task's result per frame, and every task's lag.

Staff with the ``stream_analysis.view_analysistask`` permission only (it
redirects to the admin's login; staff without the permission get 403). The page is plain HTML; its
inline script fetches ``data.json`` every few seconds and redraws an inline
SVG and a table: no CDN, nothing from the internet.

The views take the task key and the result field as URL arguments and never
import the demo's models, so that the test suite can serve them for its own
task (``tests/dashboard_urls.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.utils import timezone
from django.views.decorators.cache import never_cache

from stream_analysis.exceptions import UnknownTaskError
from stream_analysis.models import AnalysisTask
from stream_analysis.status import VIEW_PERMISSION, all_statuses

#: How many of the newest frames the chart shows.
FRAMES_SHOWN = 40


@cache
def page_template():
    # Read by path, not through the app template loaders, so that the page
    # renders where the demo is not an installed app (the test suite).
    source = Path(__file__).with_name("dashboard.html").read_text()
    return engines["django"].from_string(source)


def viewers_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Staff (else the admin's login) with the permission to view tasks (else 403)."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.has_perm(VIEW_PERMISSION):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return staff_member_required(checked)


def require_task(key: str) -> AnalysisTask:
    try:
        return AnalysisTask.require(key)
    except UnknownTaskError as exc:
        raise Http404(str(exc)) from exc


@viewers_only
def dashboard(
    request: HttpRequest, task: str, field: str, refresh_seconds: float = 5.0
) -> HttpResponse:
    """The page; ``task`` is the key of the task charted, ``field`` its result field."""
    context = {
        "task": require_task(task),
        "field": field,
        "frames_shown": FRAMES_SHOWN,
        "refresh_ms": int(refresh_seconds * 1000),
    }
    return HttpResponse(page_template().render(context, request))


@never_cache
@viewers_only
def dashboard_data(request: HttpRequest, task: str, field: str) -> JsonResponse:
    """The newest frames of ``task`` (oldest first) with ``field``, and every task's status."""
    frame_class = require_task(task).get_frame_class()
    newest = frame_class._default_manager.order_by("-start_time").only(
        "start_time", "calculated", "failed", "attempts", "calculated_at", field
    )[:FRAMES_SHOWN]
    frames = [
        {
            "start": frame.start_time.isoformat(),
            "end": frame.end_time.isoformat(),
            "status": frame.status,
            "value": getattr(frame, field) if frame.calculated else None,
        }
        for frame in reversed(newest)
    ]
    return JsonResponse(
        {
            "task": task,
            "field": field,
            "frames": frames,
            "tasks": [status.as_json() for status in all_statuses()],
            "generated_at": timezone.now().isoformat(),
        }
    )
