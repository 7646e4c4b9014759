"""The results page of a frame model in the admin: a chart of any numeric field, and exports.

Part of :class:`~stream_analysis.admin.BaseTimeFrameAdmin` (through
:class:`ResultsAdminMixin`): ``…/<model>/results/`` charts a field over a
range, ``…/results/export.csv`` and ``export.json`` stream the range's frames.
The chart is an SVG drawn on the server (no JavaScript, nothing from a CDN):
a line through the buckets' values, broken where a bucket has no calculated
frame; grey bands mark buckets with missing or unfinished frames, red ones
failed frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.http import urlencode

from .. import results, views
from .chart import describe


@dataclass(frozen=True)
class Band:
    """A bucket's shading: its problem and where it is drawn."""

    kind: str  # "failed", "gap" (no value) or "incomplete"
    colour: str
    x: float
    width: float
    title: str


@dataclass(frozen=True)
class Plot:
    """A :class:`~stream_analysis.results.Series` laid out in SVG user units."""

    series: results.Series
    width: int
    height: int
    #: ``points`` attributes of the polylines: one per run of buckets with a value.
    lines: list[str]
    #: Lone values (a run of one bucket) as circles: (x, y).
    dots: list[tuple[float, float]]
    bands: list[Band]
    low: float | None
    high: float | None

    @property
    def bucket_label(self) -> str:
        return describe(self.series.bucket)

    @property
    def values(self) -> int:
        return sum(point.value is not None for point in self.series.points)


BAND_COLOURS = {"failed": "#ba2121", "gap": "#999999", "incomplete": "#cccccc"}


def band_of(point: results.Point) -> str | None:
    if point.failed:
        return "failed"
    if point.value is None:
        return "gap"
    return None if point.complete else "incomplete"


def plot(series: results.Series, size: tuple[int, int] = (900, 240)) -> Plot:
    """Lay ``series`` out: x by bucket, y from the lowest to the highest value."""
    width, height = size
    values = [p.value for p in series.points if p.value is not None]
    low, high = (min(values), max(values)) if values else (None, None)
    column = width / max(len(series.points), 1)
    span = (high - low) if values and high != low else 1.0  # type: ignore[operator]

    def y(value: float) -> float:
        return round(height - 4 - (value - (low or 0.0)) / span * (height - 8), 2)

    lines: list[str] = []
    dots: list[tuple[float, float]] = []
    bands: list[Band] = []
    run: list[tuple[float, float]] = []
    for index, point in enumerate(series.points):
        x = round((index + 0.5) * column, 2)
        kind = band_of(point)
        if kind is not None:
            title = (
                f"{point.start:%Y-%m-%d %H:%M:%S}: {point.calculated} calculated, "
                f"{point.unfinished} unfinished, {point.failed} failed, {point.missing} missing"
            )
            bands.append(Band(kind, BAND_COLOURS[kind], index * column, column, title))
        if point.value is None:
            lines, dots = flush(run, lines, dots)
            run = []
        else:
            run.append((x, y(point.value)))
    lines, dots = flush(run, lines, dots)
    return Plot(series, width, height, lines, dots, bands, low, high)


def flush(
    run: list[tuple[float, float]], lines: list[str], dots: list[tuple[float, float]]
) -> tuple[list[str], list[tuple[float, float]]]:
    if len(run) > 1:
        lines.append(" ".join(f"{x},{y}" for x, y in run))
    elif run:
        dots.append(run[0])
    return lines, dots


class ResultsAdminMixin:
    """Adds the results page and the exports to a frame model's ``ModelAdmin``."""

    #: Most buckets of the results chart.
    results_points = results.MAX_POINTS
    model: Any
    admin_site: Any
    opts: Any

    def results_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("results/", wrap(self.results_view), name=f"{name}_results"),
            path(
                "results/export.<str:kind>",
                wrap(self.results_export_view),
                name=f"{name}_results_export",
            ),
        ]

    def require_results_permission(self, request: HttpRequest) -> None:
        if not self.has_view_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied

    def results_export_view(self, request: HttpRequest, kind: str) -> HttpResponseBase:
        self.require_results_permission(request)
        if kind not in ("csv", "json"):
            return HttpResponse(f"No export as {kind!r}: use csv or json.", status=404)
        return views.export(request, self.model, kind)

    def results_view(self, request: HttpRequest) -> HttpResponse:
        self.require_results_permission(request)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Results of {self.opts.verbose_name_plural}",
            **self.results_context(request),
        }
        return TemplateResponse(request, "admin/stream_analysis/results.html", context)

    def results_context(self, request: HttpRequest) -> dict[str, Any]:
        fields = results.numeric_fields(self.model)
        field = request.GET.get("field") or fields[0]
        context: dict[str, Any] = {"fields": fields, "field": field, "error": None}
        if field not in fields:
            context["error"] = f"{self.model.__name__} has no numeric field {field!r}."
            return context
        try:
            bounds = results.parse_range(request.GET, self.model)
        except results.BadRange as error:
            context["error"] = str(error)
            return context
        if bounds is None:
            context["error"] = f"{self.model.__name__} has no frames yet."
            return context
        start, end = bounds
        series = results.series(self.model, field, start, end, self.results_points)
        context.update(
            plot=plot(series),
            start=start.isoformat(),
            end=end.isoformat(),
            export_query=urlencode({"start": start.isoformat(), "end": end.isoformat()}),
            rollups=[level.__name__ for level in results.rollups_of(self.model)],
        )
        return context
