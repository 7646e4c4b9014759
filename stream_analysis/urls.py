"""``path("analysis/", include("stream_analysis.urls"))``: results as JSON and CSV (see views)."""

from django.urls import re_path

from . import views

app_name = "stream_analysis"

urlpatterns = [
    re_path(
        r"^results/(?P<model>[\w]+\.[\w]+)\.(?P<kind>json|csv)$",
        views.results_view,
        name="results",
    ),
]
