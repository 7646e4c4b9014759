from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
]
# The admin's CSS and JavaScript under gunicorn, while DEBUG is on (the demo);
# in production serve static files with a web server or WhiteNoise instead.
urlpatterns += staticfiles_urlpatterns()
