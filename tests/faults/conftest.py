"""Fixtures of the fault suite, and the table of its figures at the end of the session."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from stream_analysis.database import database_url
from tests.conftest import Processes

from .harness import LONG, RESULTS, Cluster, Database, ThrowawayServer, table


@pytest.fixture
def shared_db(live_db: None) -> Database:
    """This test run's database (pytest-django's), seen by the test's processes."""
    return Database(database_url(connection.settings_dict))


@pytest.fixture
def clusters(
    tmp_path: Path, processes: Processes, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Cluster]]:
    """Make a :class:`Cluster`; every process it started is stopped after the test
    (SIGTERM, then SIGKILL; ``processes`` kills what is left if that fails)."""
    made: list[Cluster] = []

    def make(db: Database, tasks: list[str], **env: str) -> Cluster:
        cluster = Cluster(db, tmp_path, tasks, processes, **env)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for cluster in made:
            print(cluster.logs())


@pytest.fixture
def throwaway_server(request: pytest.FixtureRequest) -> Iterator[ThrowawayServer]:
    """A migrated PostgreSQL server of this test's own, deleted afterwards.

    Not under pytest's tmp_path: run as root, the server runs as another user,
    and any pytest session starting meanwhile makes /tmp/pytest-of-root private
    again, so that pg_ctl could no longer reach the data folder. Clusters made by
    the test are stopped before the server (``clusters`` is set up after this
    fixture, so it is torn down first).
    """
    folder = Path(tempfile.mkdtemp(prefix="stream-analysis-faults-"))
    folder.chmod(0o755)
    try:
        server = ThrowawayServer(folder / "data")
        try:
            server.migrate()
            request.getfixturevalue("clusters")
            yield server
        finally:
            server.remove()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the scenarios' figures, whatever pytest captured."""
    if not RESULTS:
        return
    version = "long (FAULTS_LONG=1)" if LONG else "short"
    terminalreporter.write_sep("=", f"fault tolerance, {version} version")
    for line in table(RESULTS):
        terminalreporter.write_line(line)
