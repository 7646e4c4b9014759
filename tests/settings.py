"""Settings of the test suite: real PostgreSQL (embedded unless DATABASE_URL is set)."""

import os
from pathlib import Path

from actors.broker import broker_settings
from stream_analysis.database import database_config

REPO_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "tests"
USE_TZ = True
TIME_ZONE = "UTC"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",  # the admin's CSS in the browser test's live server
    "django_dramatiq",
    "stream_analysis",
    "actors",
    "tests.testapp",
    "tests.legacy_client",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.urls"
STATIC_URL = "static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {"default": database_config(REPO_DIR / ".pgdata")}
# One test database per test run, so that runs side by side never share one.
DATABASES["default"]["TEST"] = {
    "NAME": os.environ.get("STREAM_ANALYSIS_TEST_DB", f"test_stream_analysis_{os.getpid()}")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DRAMATIQ_BROKER = broker_settings()

ANALYSIS_TIME_FRAME_TASKS = {
    "counts": {
        "name": "Item counts",
        "frame_class_path": "tests.testapp.models.CountFrame",
        "autostart": True,
    },
    "flaky": {
        "name": "Flaky counts",
        "frame_class_path": "tests.testapp.models.FlakyFrame",
        "autostart": True,
    },
    "seconds": {
        "name": "Second counts",
        "frame_class_path": "tests.testapp.models.SecondFrame",
        "autostart": False,
    },
    "minutely": {
        "name": "Minute counts",
        "frame_class_path": "tests.testapp.models.MinuteFrame",
        "autostart": False,
    },
}

# Fast retries so the suite does not wait on backoff.
STREAM_ANALYSIS_RETRY_BACKOFF = float(os.environ.get("STREAM_ANALYSIS_RETRY_BACKOFF", "0.2"))
STREAM_ANALYSIS_TIME_BUDGET = float(os.environ.get("STREAM_ANALYSIS_TIME_BUDGET", "2"))
STREAM_ANALYSIS_FRAME_TIME_LIMIT = float(os.environ.get("STREAM_ANALYSIS_FRAME_TIME_LIMIT", "60"))
