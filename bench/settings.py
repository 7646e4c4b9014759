"""Settings of the benchmarks: their own database and frame models, the app's defaults.

The frame models live in ``bench.benchapp``. The app's tuning settings are its
defaults unless ``STREAM_ANALYSIS_BATCH_SIZE`` / ``STREAM_ANALYSIS_TIME_BUDGET``
are set in the environment (the worker processes inherit it).
"""

import os
from pathlib import Path

from actors.broker import broker_settings
from stream_analysis.database import behind_pgbouncer, database_config

REPO_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "bench"
USE_TZ = True
TIME_ZONE = "UTC"
DEBUG = False

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_dramatiq",
    "stream_analysis",
    "actors",
    "bench.benchapp",
]

DATABASES = {"default": database_config(REPO_DIR / ".pgdata")}
DATABASES["default"]["NAME"] = os.environ.get("BENCH_DATABASE", "bench_stream_analysis")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# bench.hosts: the workers' Django connections through PgBouncer (BEHIND_PGBOUNCER), and
# the broker either through it too, polling (BROKER_LISTEN=0), or on the server itself
# (DIRECT_DATABASE_URL: LISTEN needs a session).
if os.environ.get("BEHIND_PGBOUNCER"):
    DATABASES["default"] = behind_pgbouncer(DATABASES["default"])
BROKER_OPTIONS: dict = {}
if os.environ.get("DIRECT_DATABASE_URL"):
    import dj_database_url

    DATABASES["direct"] = dj_database_url.parse(os.environ["DIRECT_DATABASE_URL"])
    BROKER_OPTIONS["database_alias"] = "direct"
if os.environ.get("BROKER_LISTEN") == "0":
    BROKER_OPTIONS["listen"] = False
DRAMATIQ_BROKER = broker_settings(**BROKER_OPTIONS)

ANALYSIS_TIME_FRAME_TASKS = {
    "synthetic": {
        "name": "Trivial calculate, stream without queries",
        "frame_class_path": "bench.benchapp.models.SyntheticFrame",
        "autostart": True,
    },
    "late": {
        "name": "Recompute late items, 1M calculated frames",
        "frame_class_path": "bench.benchapp.models.LateFrame",
        "autostart": True,
    },
    "live": {
        "name": "A live 15 s task beside a backlog",
        "frame_class_path": "bench.benchapp.models.LiveFrame",
        "autostart": True,
    },
    "table": {
        "name": "Trivial calculate, stream read from a table",
        "frame_class_path": "bench.benchapp.models.TableFrame",
        "autostart": True,
    },
    "quarter": {
        "name": "A rollup: quarter hours of the synthetic 15 s frames",
        "frame_class_path": "bench.benchapp.models.QuarterHourFrame",
        "autostart": True,
    },
    "aggregates": {
        "name": "AGGREGATES: count and average by PostgreSQL",
        "frame_class_path": "bench.benchapp.models.AggregateFrame",
        "autostart": True,
    },
    "batch_read": {
        "name": "calculate() with batch reads",
        "frame_class_path": "bench.benchapp.models.BatchReadFrame",
        "autostart": True,
    },
    "per_frame": {
        "name": "calculate(), one read per frame",
        "frame_class_path": "bench.benchapp.models.PerFrameFrame",
        "autostart": True,
    },
}

if "STREAM_ANALYSIS_BATCH_SIZE" in os.environ:
    STREAM_ANALYSIS_BATCH_SIZE = int(os.environ["STREAM_ANALYSIS_BATCH_SIZE"])
if "STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE" in os.environ:
    STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE = int(os.environ["STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE"])
if "STREAM_ANALYSIS_TIME_BUDGET" in os.environ:
    STREAM_ANALYSIS_TIME_BUDGET = float(os.environ["STREAM_ANALYSIS_TIME_BUDGET"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING"},
}

# The late-tick benchmark reads arrivals almost at once.
STREAM_ANALYSIS_ARRIVAL_SETTLE = float(os.environ.get("STREAM_ANALYSIS_ARRIVAL_SETTLE", "0.05"))
