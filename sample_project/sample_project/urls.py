from demo import dashboard
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path
from django.views.generic import RedirectView

from stream_analysis.contrib.prometheus import metrics_view

DEMO = {"task": "demo", "field": "item_count"}

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    # Staff with the stream_analysis.view_analysistask permission only.
    path("dashboard/", dashboard.dashboard, DEMO),
    path("dashboard/data.json", dashboard.dashboard_data, DEMO),
    # Staff with that permission (or a bearer token): see docs/metrics.md.
    path("metrics", metrics_view),
]
# The admin's CSS and JavaScript under gunicorn, while DEBUG is on (the demo);
# in production serve static files with a web server or WhiteNoise instead.
urlpatterns += staticfiles_urlpatterns()
