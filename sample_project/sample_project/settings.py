"""Settings of the stream_analysis demo. Set DATABASE_URL to use your own server."""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BASE_DIR.parent
if str(REPO_DIR) not in sys.path:  # run from a checkout without installing the packages
    sys.path.insert(1, str(REPO_DIR))

from actors.broker import broker_settings  # noqa: E402
from stream_analysis.database import behind_pgbouncer, database_config  # noqa: E402

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
# Off unless asked for (DJANGO_DEBUG=1, as demo.sh does on 127.0.0.1): a debug
# page shows settings and local variables to whoever triggers an error.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dramatiq",
    "stream_analysis",
    "actors",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sample_project.urls"
WSGI_APPLICATION = "sample_project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"

DRAMATIQ_BROKER = broker_settings()

# Behind PgBouncer in transaction pooling (docs/deployment.md): DATABASE_URL is PgBouncer's,
# DIRECT_DATABASE_URL the server's, for the broker's LISTEN (a session of its own).
if os.environ.get("DIRECT_DATABASE_URL"):
    import dj_database_url

    DATABASES["default"] = behind_pgbouncer(DATABASES["default"])
    DATABASES["direct"] = {
        **dj_database_url.parse(os.environ["DIRECT_DATABASE_URL"]),
        "TEST": {"MIRROR": "default"},
    }
    DRAMATIQ_BROKER = broker_settings(database_alias="direct")

ANALYSIS_TIME_FRAME_TASKS = {
    "demo": {
        "name": "Demo Analysis",
        "frame_class_path": "demo.models.DemoTimeFrame",
        "autostart": True,
    },
    "demo_sql": {
        "name": "Demo Analysis by SQL (AGGREGATES)",
        "frame_class_path": "demo.models.DemoAggregateFrame",
        "autostart": True,
    },
}

# propagate=False: under dramatiq, whose root handler would print every line twice.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"short": {"format": "[%(levelname)s] [%(name)s] %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "short"}},
    "loggers": {
        "stream_analysis": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "actors": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
