"""A dramatiq-postgres broker that connects with Django's database settings."""

from __future__ import annotations

from typing import Any

from django.db import connections
from dramatiq_postgres import PostgresBroker
from psycopg_pool import ConnectionPool

from stream_analysis.database import KEEPALIVE_OPTIONS

#: Keys of Django's connection parameters that are not libpq keywords (``prepare_threshold``
#: is one, but psycopg's ``connect()`` takes it: it is passed on).
_DJANGO_ONLY = ("cursor_factory", "context")

#: The app's TCP keepalives, and a send timeout: on every broker connection, also
#: with DATABASES written by hand (libpq ignores them on a Unix socket).
KEEPALIVES = {**KEEPALIVE_OPTIONS, "tcp_user_timeout": 10000}

#: Default size of a worker process's broker connection pool (``max_connections``).
POOL_SIZE = 16


def connection_kwargs(alias: str = "default") -> dict[str, Any]:
    """libpq keywords for the database ``alias``, exactly as Django connects to it.

    Built from Django's own ``get_connection_params()``, so a socket directory
    in ``HOST`` or in ``OPTIONS`` (as dj-database-url writes ``?host=``) and a
    test database's name are honoured; TCP keepalives are added so a dead host
    releases its locks quickly. Statements are never prepared on the server (as
    Django's own connections): through PgBouncer in transaction pooling, a
    statement prepared on one server connection is unknown to the next.
    """
    params = connections[alias].get_connection_params()
    kwargs = {k: v for k, v in params.items() if k not in _DJANGO_ONLY}
    kwargs.setdefault("prepare_threshold", None)
    kwargs.setdefault("application_name", "stream_analysis-broker")
    for key, value in KEEPALIVES.items():
        kwargs.setdefault(key, value)
    return kwargs


class DjangoPostgresBroker(PostgresBroker):
    """``PostgresBroker`` on the same database as Django's ``database_alias``.

    Connection settings are read when a connection is opened, not when the
    broker is built, so the broker follows the test runner's test database.
    Options are those of ``PostgresBroker`` (``heartbeat_ttl``, ``schema``…),
    plus ``database_alias`` and ``max_connections`` (pool size per process).
    """

    def __init__(
        self, *, database_alias: str = "default", max_connections: int = POOL_SIZE, **options: Any
    ) -> None:
        self.database_alias = database_alias
        self.schema = options.get("schema") or "dramatiq"
        self.prefix = options.get("prefix") or ""
        if "pool" not in options and "url" not in options:
            options["pool"] = ConnectionPool(
                "",
                kwargs=lambda: connection_kwargs(database_alias),
                min_size=0,
                max_size=max_connections,
                open=True,
                check=ConnectionPool.check_connection,
            )
            super().__init__(**options)
            self._owns_pool = True
        else:
            super().__init__(**options)


#: The middleware a stream_analysis worker needs, written out: django-dramatiq's
#: default list names Prometheus, which does not import on dramatiq 2, and an
#: empty list would build a broker without retries, time limits or periodiq.
#: ConnectionBudget warns at start when a worker is too big for the server.
#: CurrentMessage lets a redelivered coordinator tick send the re-arm it claimed
#: before its worker died (``actors.tasks.current_message_id``).
MIDDLEWARE = [
    "dramatiq.middleware.AgeLimit",
    "dramatiq.middleware.TimeLimit",
    "dramatiq.middleware.ShutdownNotifications",
    "dramatiq.middleware.Callbacks",
    "dramatiq.middleware.Pipelines",
    "dramatiq.middleware.Retries",
    "dramatiq.middleware.CurrentMessage",
    "periodiq.PeriodiqMiddleware",
    "django_dramatiq.middleware.DbConnectionsMiddleware",
    "actors.sizing.ConnectionBudget",
    "actors.shutdown.GracefulShutdown",
]


#: The middleware of :data:`MIDDLEWARE` a guarantee depends on, and what is lost without
#: each: ``manage.py check`` warns of a hand-written list that lacks one
#: (``stream_analysis.W003``).
NEEDED_MIDDLEWARE = {
    "dramatiq.middleware.TimeLimit": "a hung calculate() is never interrupted",
    "dramatiq.middleware.Retries": (
        "a tick or a calculation that meets a database error (a restart, a reset "
        "connection) is not retried"
    ),
    "dramatiq.middleware.CurrentMessage": (
        "a tick redelivered after its worker died cannot send the re-arm it had claimed: "
        "the task waits for the scheduler's next minute"
    ),
    "periodiq.PeriodiqMiddleware": "the scheduler sends nothing: no tick, no periodic cleanup",
    "django_dramatiq.middleware.DbConnectionsMiddleware": (
        "worker threads keep database connections that a server restart broke"
    ),
    "actors.shutdown.GracefulShutdown": (
        "a restart (SIGTERM to the process group, as honcho, Heroku and systemd send it) "
        "kills the batches under way instead of committing them"
    ),
}


def broker_settings(**options: Any) -> dict[str, Any]:
    """A ``DRAMATIQ_BROKER`` setting for this app; ``options`` go to the broker.

    Defaults: no result backend, and a dead worker's messages redelivered after
    20 s without a heartbeat (dramatiq-postgres' default is 60 s).
    """
    return {
        "BROKER": "actors.broker.DjangoPostgresBroker",
        "OPTIONS": {"results": False, "heartbeat_interval": 5.0, "heartbeat_ttl": 20.0, **options},
        "MIDDLEWARE": list(MIDDLEWARE),
    }


def broker_settings_for(broker: str, **options: Any) -> dict[str, Any]:
    """A ``DRAMATIQ_BROKER`` setting for another Dramatiq broker (its dotted path), with the
    middleware a stream_analysis worker needs; ``options`` go to the broker.

    For RabbitMQ (``pip install 'django-stream-analysis[rabbitmq]'``)::

        broker_settings_for("dramatiq.brokers.rabbitmq.RabbitmqBroker",
                            url="amqp://guest:guest@rabbitmq:5672/analysis")

    and Redis (``[redis]``): ``"dramatiq.brokers.redis.RedisBroker"``, ``url=...``.
    PostgreSQL stays the queue of frames and the lock; the broker carries tokens
    (docs/deployment.md says what each broker cannot do).
    """
    return {"BROKER": broker, "OPTIONS": options, "MIDDLEWARE": list(MIDDLEWARE)}
