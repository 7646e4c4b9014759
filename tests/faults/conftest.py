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
from tests.conftest import Processes, run_bouncer
from tests.pgbouncer import PgBouncer

from .harness import LONG, RESULTS, Cluster, Database, ThrowawayServer, table


def run_database() -> Database:
    """This test run's database (pytest-django's), reached directly."""
    return Database(database_url(connection.settings_dict))


@pytest.fixture
def shared_db(live_db: None) -> Database:
    """This test run's database, seen by the test's processes (through the run's
    PgBouncer with TEST_PGBOUNCER=1: ``clusters``)."""
    return run_database()


class Route:
    """How a scenario's processes reach PostgreSQL: ``direct`` (the default) or through a
    PgBouncer of the test's own (``pgbouncer``). Their broker is the run's (TEST_BROKER:
    tests/brokers.py). :meth:`begin` returns ``clusters()`` arguments."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.bouncer: PgBouncer | None = None

    def begin(self, settings_dict: dict[str, Any]) -> dict[str, Any]:
        if self.kind == "pgbouncer":
            self.bouncer = PgBouncer(settings_dict, pool_size=4).start()
            return {"via": Database(self.bouncer.url(settings_dict["NAME"]))}
        return {}

    def end(self) -> None:
        if self.bouncer is not None:
            self.bouncer.stop()


@pytest.fixture
def route(request: pytest.FixtureRequest) -> Iterator[Route]:
    """The scenario's :class:`Route` (``direct`` unless parametrized); request it before
    ``clusters`` so that the processes stop before it ends."""
    made = Route(getattr(request, "param", "direct"))
    yield made
    made.end()


def routes(*kinds: str) -> Any:
    """Parametrize a scenario over routes; all but ``direct`` are marked ``deployment``."""
    return pytest.mark.parametrize(
        "route",
        [pytest.param(k, id=k, marks=() if k == "direct" else pytest.mark.deployment)
         for k in kinds],
        indirect=True,
    )  # fmt: skip


@pytest.fixture
def clusters(
    tmp_path: Path, processes: Processes, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Cluster]]:
    """Make a :class:`Cluster`; every process it started is stopped after the test
    (SIGTERM, then SIGKILL; ``processes`` kills what is left if that fails)."""
    made: list[Cluster] = []

    def make(db: Database, tasks: list[str], via: Database | None = None, **env: str) -> Cluster:
        bouncer = run_bouncer()
        if via is None and bouncer is not None and db == run_database():
            via = Database(bouncer.url(connection.settings_dict["NAME"]))  # TEST_PGBOUNCER
        cluster = Cluster(db, tmp_path, tasks, processes, via, **env)
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
