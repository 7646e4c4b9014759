"""Results of the configured frame models as JSON and CSV, for a front end of one's own.

Include the URLs::

    path("analysis/", include("stream_analysis.urls")),

then ``GET analysis/results/<app_label>.<model_name>.json?start=...&end=...``
(or ``.csv``). The same rule as the admin's results page: an active staff user
with the ``view`` permission on the frame model; anyone else gets 403 and
nothing. Only the frame models of ``ANALYSIS_TIME_FRAME_TASKS`` are served.
Bounds are ISO 8601 (naive ones are in the current time zone); left out, the
range is the last 500 frames. The response is streamed: any range, bounded memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import results


def may_read_results(request: HttpRequest, frame_class: Any) -> bool:
    """Staff, active, with the ``view`` (or ``change``) permission on the frame model."""
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    opts = frame_class._meta
    return any(
        user.has_perm(f"{opts.app_label}.{action}_{opts.model_name}")
        for action in ("view", "change")
    )


def streamed(frame_class: Any, start: Any, end: Any, kind: str) -> StreamingHttpResponse:
    """The export of ``[start, end)`` as a streamed response (``kind``: 'json' or 'csv')."""
    chunks: Iterator[str]
    if kind == "csv":
        chunks, content_type = results.csv_rows(frame_class, start, end), "text/csv"
    else:
        chunks, content_type = results.json_chunks(frame_class, start, end), "application/json"
    response = StreamingHttpResponse(chunks, content_type=f"{content_type}; charset=utf-8")
    name = f"{frame_class._meta.model_name}-{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}.{kind}"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def export(request: HttpRequest, frame_class: Any, kind: str) -> HttpResponseBase:
    """The export of the request's range, or a JSON error (400) naming the fix."""
    try:
        bounds = results.parse_range(request.GET, frame_class)
    except results.BadRange as error:
        return JsonResponse({"error": str(error)}, status=400)
    if bounds is None:
        return JsonResponse({"error": f"{frame_class.__name__} has no frames yet."}, status=404)
    return streamed(frame_class, *bounds, kind)


@never_cache
@require_GET
def results_view(request: HttpRequest, model: str, kind: str) -> HttpResponseBase:
    """``results/<app_label>.<model_name>.<json|csv>``: the frames of a range."""
    frame_class = results.find_frame_class(model)
    if frame_class is None or not may_read_results(request, frame_class):
        # The same answer for an unknown model and a forbidden one: nothing to probe.
        return JsonResponse(
            {"error": "Forbidden: staff with the view permission only."}, status=403
        )
    return export(request, frame_class, kind)
