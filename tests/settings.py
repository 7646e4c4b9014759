"""Settings of the test suite: real PostgreSQL (embedded unless DATABASE_URL is set)."""

import os
from pathlib import Path
from typing import Any

from actors.broker import broker_settings, broker_settings_for
from stream_analysis.database import behind_pgbouncer, database_config

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
    "django.contrib.postgres",  # ArrayField in tests.testapp (postgres.E005 on Django 6.1)
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


# A whole test run on RabbitMQ or Redis (TEST_BROKER, tests/brokers.py) has a queue or a
# namespace of its own, named here once; the processes its tests start inherit the name.
_RUN_QUEUE = {"rabbitmq": "STREAM_ANALYSIS_QUEUE", "redis": "TEST_REDIS_NAMESPACE"}
if os.environ.get("TEST_BROKER") in _RUN_QUEUE:
    os.environ.setdefault(_RUN_QUEUE[os.environ["TEST_BROKER"]], f"sa_tests_{os.getpid()}")


def test_broker(**postgres_options: Any) -> dict:
    """The broker of a worker the tests start: TEST_BROKER (postgres, rabbitmq or redis).

    RabbitMQ and Redis run on these machines at their standard ports; the run (above),
    or a test of its own (tests/brokers.py), names the queue (STREAM_ANALYSIS_QUEUE) or
    Redis namespace (TEST_REDIS_NAMESPACE).
    """
    broker = os.environ.get("TEST_BROKER", "postgres")
    if broker == "rabbitmq":
        return broker_settings_for(
            "dramatiq.brokers.rabbitmq.RabbitmqBroker", url="amqp://guest:guest@127.0.0.1:5672"
        )
    if broker == "redis":
        namespace = os.environ.get("TEST_REDIS_NAMESPACE", "stream_analysis_tests")
        # A dead worker's messages come back once a heartbeat is this old (Redis' own
        # maintenance, run at random on 1 command in 10 here): the fault suite's 5 s.
        ttl = postgres_options.get("heartbeat_ttl")
        quick = {} if ttl is None else {"heartbeat_timeout": int(float(ttl) * 1000),
                                        "maintenance_chance": 100_000}  # fmt: skip
        return broker_settings_for(
            "dramatiq.brokers.redis.RedisBroker",
            url="redis://127.0.0.1:6379/11",
            namespace=namespace,
            **quick,
        )
    return broker_settings(**postgres_options)


# Behind PgBouncer (transaction pooling), a worker the tests start gets DATABASE_URL =
# PgBouncer, and DIRECT_DATABASE_URL = the server itself: the broker's LISTEN needs a
# session of its own, so dramatiq-postgres connects there (docs/deployment.md).
if os.environ.get("BEHIND_PGBOUNCER"):
    DATABASES["default"] = behind_pgbouncer(DATABASES["default"])
BROKER_OPTIONS: dict = {}
if os.environ.get("DIRECT_DATABASE_URL"):
    import dj_database_url

    DATABASES["direct"] = dj_database_url.parse(os.environ["DIRECT_DATABASE_URL"])
    BROKER_OPTIONS["database_alias"] = "direct"
if os.environ.get("BROKER_LISTEN") == "0":
    BROKER_OPTIONS["listen"] = False  # the broker through PgBouncer too: it polls
DRAMATIQ_BROKER = test_broker(**BROKER_OPTIONS)
STREAM_ANALYSIS_QUEUE = os.environ.get("STREAM_ANALYSIS_QUEUE", "stream_analysis")

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
    "fifteen": {
        "name": "15 s arrivals",
        "frame_class_path": "tests.testapp.models.FifteenFrame",
        "autostart": False,
    },
    "minute_rollup": {
        "name": "Arrivals per minute",
        "frame_class_path": "tests.testapp.models.MinuteRollup",
        "autostart": False,
    },
    "hour_rollup": {
        "name": "Arrivals per hour",
        "frame_class_path": "tests.testapp.models.HourRollup",
        "autostart": False,
    },
    "minute_sql_rollup": {
        "name": "Arrivals per minute, summed by AGGREGATES",
        "frame_class_path": "tests.testapp.models.MinuteSqlRollup",
        "autostart": False,
    },
    "hour_sql_rollup": {
        "name": "Arrivals per hour, summed by AGGREGATES",
        "frame_class_path": "tests.testapp.models.HourSqlRollup",
        "autostart": False,
    },
    "ten_seconds": {
        "name": "Item counts per 10 s, from the 1 s frames",
        "frame_class_path": "tests.testapp.models.TenSecondRollup",
        "autostart": False,
    },
    "minute_of_seconds": {
        "name": "Item counts per minute, from the 10 s rollup",
        "frame_class_path": "tests.testapp.models.MinuteOfSeconds",
        "autostart": False,
    },
}

# Fast retries so the suite does not wait on backoff.
STREAM_ANALYSIS_RETRY_BACKOFF = float(os.environ.get("STREAM_ANALYSIS_RETRY_BACKOFF", "0.2"))
STREAM_ANALYSIS_TIME_BUDGET = float(os.environ.get("STREAM_ANALYSIS_TIME_BUDGET", "2"))
STREAM_ANALYSIS_FRAME_TIME_LIMIT = float(os.environ.get("STREAM_ANALYSIS_FRAME_TIME_LIMIT", "60"))
