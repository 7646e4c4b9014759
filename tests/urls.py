from django.contrib import admin
from django.urls import include, path

from stream_analysis.contrib.prometheus import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("metrics", metrics_view),
    path("analysis/", include("stream_analysis.urls")),
]
