"""A PgBouncer of the tests' own, in transaction pooling, in front of a test PostgreSQL.

Debian's ``pgbouncer`` package (``.ci/run`` installs it). Each :class:`PgBouncer`
listens on a free loopback port, with a generated ini and userlist in a folder
of its own, forwards every database name to one PostgreSQL server (the embedded
server's socket, or a host and port), and is killed by :meth:`PgBouncer.stop`.
Run as root, PgBouncer refuses to start unless told a user to switch to: it then
runs as the owner of the server's socket folder (the embedded server's user, who
may connect there), or ``nobody``; its own folder is world-readable.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

#: Where Debian installs it (not on a non-root user's PATH).
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def pgbouncer_or_skip() -> str:
    """The pgbouncer executable; fail in CI when it is missing, else skip."""
    if Path(PGBOUNCER).exists():
        return PGBOUNCER
    message = "PgBouncer is not installed: apt-get install pgbouncer (.ci/run does)."
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgBouncer:
    """A PgBouncer process in transaction pooling mode, ``pool_size`` server
    connections per (database, user), in front of ``settings_dict``'s server."""

    def __init__(self, settings_dict: dict[str, Any], pool_size: int = 4) -> None:
        self.target = settings_dict
        self.pool_size = pool_size
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="stream-analysis-pgbouncer-"))
        self.folder.chmod(0o755)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def user(self) -> str:
        return str(self.target.get("USER") or "postgres")

    def ini(self) -> str:
        host = self.target.get("HOST") or self.target.get("OPTIONS", {}).get("host") or ""
        port = self.target.get("PORT") or 5432
        password = self.target.get("PASSWORD") or ""
        login = f" password={password}" if password else ""
        run_as = f"user = {self._run_as(str(host))}\n" if os.geteuid() == 0 else ""
        return (
            "[databases]\n"
            f"* = host={host} port={port} user={self.user}{login}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.folder / 'userlist.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 500\n"
            "server_reset_query =\nserver_check_delay = 1\nserver_login_retry = 1\n"
            f"ignore_startup_parameters = extra_float_digits,options\n{run_as}"
        )

    @staticmethod
    def _run_as(host: str) -> str:
        """The user that may reach the server: its socket folder's owner, else nobody."""
        if host.startswith("/"):
            return pwd.getpwuid(Path(host).stat().st_uid).pw_name
        return "nobody"

    def start(self) -> PgBouncer:
        executable = pgbouncer_or_skip()
        (self.folder / "userlist.txt").write_text(f'"{self.user}" ""\n')
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(self.ini())
        for path in self.folder.iterdir():
            path.chmod(0o644)
        log = open(self.folder / "pgbouncer.log", "wb")  # noqa: SIM115 - the process's
        self.proc = subprocess.Popen(
            [executable, str(ini)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + 20
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"PgBouncer did not start:\n{self.log()}")
            time.sleep(0.02)
        return self

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def settings_dict(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` (a Django database settings dict) pointed at this PgBouncer, with the
        options transaction pooling needs (see docs/deployment.md)."""
        from stream_analysis.database import behind_pgbouncer

        options = {k: v for k, v in base.get("OPTIONS", {}).items() if k != "host"}
        moved = {**base, "HOST": "127.0.0.1", "PORT": str(self.port), "OPTIONS": options}
        return behind_pgbouncer(moved)

    def url(self, name: str) -> str:
        return f"postgres://{quote(self.user)}@127.0.0.1:{self.port}/{quote(name)}"

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)
