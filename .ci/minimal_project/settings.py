"""The smallest project that uses stream_analysis, for CI's check of the bare wheel.

Installed without extras (no embedded PostgreSQL, no Prometheus): `manage.py check`
must pass. DATABASES is written out; check does not connect.
"""

from actors.broker import broker_settings

SECRET_KEY = "minimal"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_dramatiq",
    "stream_analysis",
    "actors",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "minimal",
        "HOST": "127.0.0.1",
    }
}
DRAMATIQ_BROKER = broker_settings()
ANALYSIS_TIME_FRAME_TASKS: dict[str, dict[str, object]] = {}
