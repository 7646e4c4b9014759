"""Prometheus metrics of every task, read from the database when they are scraped.

Every number comes from the shared database (frames, task state, cleanup
totals), none from the memory of the process that serves it: any web process
reports the whole cluster, however many workers run and wherever. Serve them
with :func:`metrics_view` (``path("metrics", metrics_view)``), or register
:class:`StreamAnalysisCollector` with a registry of your own, for example
``prometheus_client.REGISTRY.register(StreamAnalysisCollector())`` in a process
that calls ``prometheus_client.start_http_server(9191)``.

Each scrape costs, per task, the queries of
:func:`stream_analysis.status.task_status` and one aggregate over the frames
for the duration histogram, plus one query for the cleanup totals.

Metrics (the ``task`` label is the task's key; ``stream`` a stream class's dotted path):

- ``stream_analysis_frames{task, status}`` (gauge): frames ``done``, ``pending``
  (including retrying and stale) and ``failed``.
- ``stream_analysis_lag_seconds{task}`` (gauge): the stream's latest time minus
  the end of the newest calculated frame; absent until a frame is calculated.
- ``stream_analysis_task_running{task}`` (gauge): 1 if the task runs, else 0.
- ``stream_analysis_last_tick_timestamp_seconds{task}`` (gauge): Unix time of the
  coordinator's last tick; absent before the first one.
- ``stream_analysis_calculate_duration_seconds{task}`` (gauge histogram): the
  ``analysis_time`` of frames calculated in the last ``STREAM_ANALYSIS_METRICS_WINDOW``
  seconds (default 600).
- ``stream_analysis_recomputes_total{task, reason}`` (counter): frames put back to be
  calculated again, by reason: ``late`` (items arrived after), ``recompute`` (an
  operator's), ``retry`` (an operator's retry of a failed frame).
- ``stream_analysis_late_items_total{task}`` (counter): late items that made frames
  be recomputed.
- ``stream_analysis_cleanup_rows_deleted_total{stream}`` (counter): stream rows
  deleted by ``cleanup()``.
- ``stream_analysis_cleanup_last_run_timestamp_seconds{stream}`` (gauge): Unix
  time of the last ``cleanup()`` that looked at the stream.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET

from .. import extras

extras.require("prometheus_client", "stream_analysis.contrib.prometheus")

from prometheus_client.core import (  # noqa: E402
    CounterMetricFamily,
    GaugeHistogramMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder  # noqa: E402
from prometheus_client.registry import Collector, CollectorRegistry  # noqa: E402

from .. import states  # noqa: E402
from ..models import AnalysisTask, CleanupTotal  # noqa: E402
from ..settings import app_settings  # noqa: E402
from ..status import VIEW_PERMISSION, TaskStatus, task_status  # noqa: E402

#: Upper bounds (seconds) of the calculate-duration buckets; ``+Inf`` is added.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
)  # fmt: skip

STATUSES = ("done", "pending", "failed")


def duration_buckets(
    frame_class: Any, since: datetime, bounds: Sequence[float] = DURATION_BUCKETS
) -> tuple[list[tuple[str, float]], float]:
    """Cumulative ``(le, count)`` buckets of ``analysis_time`` and its sum, for frames
    calculated at or after ``since``.

    One aggregate query: each bucket is a ``COUNT(*) FILTER (WHERE analysis_time <= le)``,
    so no frame is loaded into Python.
    """
    counts = {
        f"le_{index}": models.Count("pk", filter=models.Q(analysis_time__lte=bound))
        for index, bound in enumerate(bounds)
    }
    row = frame_class._default_manager.filter(
        states.CALCULATED, calculated_at__gte=since, analysis_time__isnull=False
    ).aggregate(total=models.Count("pk"), seconds=models.Sum("analysis_time"), **counts)
    buckets = [(str(bound), float(row[f"le_{i}"])) for i, bound in enumerate(bounds)]
    buckets.append(("+Inf", float(row["total"])))
    return buckets, float(row["seconds"] or 0.0)


def _timestamp(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


def task_families(statuses: Iterable[TaskStatus]) -> list[Metric]:
    """The per-task gauges: frames by status, lag, running, last tick."""
    frames = GaugeMetricFamily(
        "stream_analysis_frames", "Frames of the task by status.", labels=["task", "status"]
    )
    lag = GaugeMetricFamily(
        "stream_analysis_lag_seconds",
        "Stream's latest time minus the end of the newest calculated frame.",
        labels=["task"],
        unit="seconds",
    )
    running = GaugeMetricFamily(
        "stream_analysis_task_running", "1 if the task runs, 0 if stopped.", labels=["task"]
    )
    last_tick = GaugeMetricFamily(
        "stream_analysis_last_tick_timestamp_seconds",
        "Unix time of the coordinator's last tick of the task.",
        labels=["task"],
        unit="seconds",
    )
    for status in statuses:
        for name in STATUSES:
            frames.add_metric([status.key, name], getattr(status, name))
        if status.lag_seconds is not None:
            lag.add_metric([status.key], status.lag_seconds)
        running.add_metric([status.key], float(status.running))
        tick = _timestamp(status.last_tick_at)
        if tick is not None:
            last_tick.add_metric([status.key], tick)
    return [frames, lag, running, last_tick]


def trail_families(statuses: Iterable[TaskStatus]) -> list[Metric]:
    """Recomputes by reason and late items per task (counters; see ``stream_analysis.trail``)."""
    recomputes = CounterMetricFamily(
        "stream_analysis_recomputes",
        "Frames put back to be calculated again, by reason.",
        labels=["task", "reason"],
    )
    late_items = CounterMetricFamily(
        "stream_analysis_late_items",
        "Items that arrived after their frame was calculated (and made it recompute).",
        labels=["task"],
    )
    for status in statuses:
        for reason, frames in sorted(status.recomputes.items()):
            recomputes.add_metric([status.key, reason], frames)
        late_items.add_metric([status.key], status.late_items)
    return [recomputes, late_items]


def duration_family(tasks: Iterable[AnalysisTask], window: timedelta) -> Metric:
    """The calculate-duration gauge histogram of every task, over the last ``window``."""
    family = GaugeHistogramMetricFamily(
        "stream_analysis_calculate_duration_seconds",
        f"Seconds of get_stream_data() and calculate() per frame, for the frames calculated "
        f"in the last {window.total_seconds():g} s.",
        labels=["task"],
        unit="seconds",
    )
    since = timezone.now() - window
    for task in tasks:
        buckets, seconds = duration_buckets(task.get_frame_class(), since)
        family.add_metric([task.key], buckets, seconds)
    return family


def cleanup_families(totals: Iterable[CleanupTotal]) -> list[Metric]:
    """Rows deleted by cleanup per stream (a counter) and each stream's last cleanup."""
    deleted = CounterMetricFamily(
        "stream_analysis_cleanup_rows_deleted",
        "Stream rows deleted by cleanup().",
        labels=["stream"],
    )
    last_run = GaugeMetricFamily(
        "stream_analysis_cleanup_last_run_timestamp_seconds",
        "Unix time of the last cleanup() of the stream.",
        labels=["stream"],
        unit="seconds",
    )
    for total in totals:
        deleted.add_metric([total.stream], total.rows_deleted)
        last = _timestamp(total.last_run_at)
        if last is not None:
            last_run.add_metric([total.stream], last)
    return [deleted, last_run]


class StreamAnalysisCollector(Collector):
    """A ``prometheus_client`` collector of every configured task's metrics.

    It queries the database at each ``collect()`` (each scrape). Not for a
    registry that is collected often without a scrape (such as an in-process
    push loop every second): every collection costs the queries above.
    """

    def __init__(self, window: timedelta | None = None) -> None:
        #: Overrides ``STREAM_ANALYSIS_METRICS_WINDOW`` when given.
        self.window = window

    def describe(self) -> list[Metric]:
        # Lets a registry with auto_describe (the global REGISTRY) learn the names
        # without querying the database at registration.
        return [
            *task_families([]),
            *trail_families([]),
            duration_family([], timedelta(0)),
            *cleanup_families([]),
        ]

    def collect(self) -> Iterator[Metric]:
        tasks = AnalysisTask.get()
        statuses = [task_status(task) for task in tasks]
        yield from task_families(statuses)
        yield from trail_families(statuses)
        window = self.window or timedelta(seconds=float(app_settings.METRICS_WINDOW))
        yield duration_family(tasks, window)
        yield from cleanup_families(CleanupTotal.objects.all())


@sensitive_variables()
def may_read_metrics(request: HttpRequest) -> bool:
    """Whether ``request`` may read the metrics.

    Yes if ``STREAM_ANALYSIS_METRICS_PUBLIC`` is True, if it carries
    ``Authorization: Bearer <STREAM_ANALYSIS_METRICS_TOKEN>`` (when a token is
    set), or if it comes from a logged-in staff user with the
    ``stream_analysis.view_analysistask`` permission. A setting of the wrong
    type (``manage.py check`` reports it) lets nobody in: "False" is not True.

    The tokens are compared in constant time, as UTF-8 bytes (any header value
    compares). Neither is ever a local variable of a frame that could be
    active in an error: an error report or a debug page cannot show them.
    """
    if app_settings.METRICS_PUBLIC is True:
        return True
    if token_is_set() and hmac.compare_digest(bearer_token(request), metrics_token()):
        return True
    user = getattr(request, "user", None)
    return bool(
        user is not None and user.is_active and user.is_staff and user.has_perm(VIEW_PERMISSION)
    )


@sensitive_variables()
def token_is_set() -> bool:
    token = app_settings.METRICS_TOKEN
    return isinstance(token, str) and bool(token)


@sensitive_variables()
def metrics_token() -> bytes:
    """``STREAM_ANALYSIS_METRICS_TOKEN`` as UTF-8 bytes."""
    return str(app_settings.METRICS_TOKEN).encode()


@sensitive_variables()
def bearer_token(request: HttpRequest) -> bytes:
    """The request's bearer token as UTF-8 bytes; empty without one."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return given.strip().encode() if scheme.lower() == "bearer" else b""


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Every task's metrics in Prometheus' text format (or OpenMetrics, if asked for).

    Staff with the view permission only by default: see :func:`may_read_metrics`.
    Anyone else gets 403.
    """
    if not may_read_metrics(request):
        return HttpResponseForbidden(
            f"Metrics are for staff users with the {VIEW_PERMISSION} permission and holders "
            "of STREAM_ANALYSIS_METRICS_TOKEN.\n",
            content_type="text/plain; charset=utf-8",
        )
    registry = CollectorRegistry()
    registry.register(StreamAnalysisCollector())
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encoder(registry), content_type=content_type)
