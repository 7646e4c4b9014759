"""URLs of the dashboard tests: the admin, the metrics and the demo's dashboard,
pointed at the test suite's ``counts`` task (``demo`` is not an installed app here)."""

import sys

from django.contrib import admin
from django.urls import path

from stream_analysis.contrib.prometheus import metrics_view
from tests.conftest import REPO

if str(REPO / "sample_project") not in sys.path:
    sys.path.append(str(REPO / "sample_project"))

from demo import dashboard

COUNTS = {"task": "counts", "field": "item_count"}

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", dashboard.dashboard, {**COUNTS, "refresh_seconds": 0.5}),
    path("dashboard/data.json", dashboard.dashboard_data, COUNTS),
    path("metrics", metrics_view),
]
