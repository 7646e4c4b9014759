"""Behind PgBouncer in transaction pooling: the cleanup's lock, the admin, the commands
(tests/workers/test_pgbouncer.py: real workers behind it).

Every test here starts a PgBouncer of its own (tests/pgbouncer.py, Debian's
package) in front of the test database's server, with 4 server connections.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from stream_analysis import retention
from tests.conftest import at, configure_only
from tests.pgbouncer import PgBouncer
from tests.streams import write_stream
from tests.testapp.models import CountFrame, Item

pytestmark = pytest.mark.usefixtures("three_tasks")


def test_the_cleanup_lock_holds_between_two_clients_sharing_pgbouncers_server_connections(
    through_pgbouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch, settings
):
    # Given items one task has analysed up to 15 s, and Django's connections through PgBouncer
    configure_only(settings, "counts")
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (0, 10, 100))
    CountFrame.objects.bulk_create(CountFrame(start_time=at(s), calculated=True) for s in (0, 15))
    real_cleanup = retention.cleanup
    second: list[Any] = []

    def cleanup_with_another_client_starting_one() -> int:
        # another client (thread: its own connection to PgBouncer) starts a cleanup meanwhile
        if second:
            return real_cleanup()  # the other client's own run, if it got the lock

        def other() -> None:
            try:
                second.append("started")
                second.append(retention.cleanup_exclusively())
            finally:
                connection.close()

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(30)
        return real_cleanup()

    monkeypatch.setattr(retention, "cleanup", cleanup_with_another_client_starting_one)

    # When a cleanup runs and another client tries one while it does
    deleted = retention.cleanup_exclusively()

    # Then the other client was refused (a session lock taken through PgBouncer stays on
    # a server connection the next client may get: it would have run side by side)
    assert second == ["started", None]
    assert deleted == 2
    # And no advisory lock is left held on any server connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
        assert cursor.fetchone()[0] == 0


def test_the_admin_and_the_commands_work_through_pgbouncer(
    through_pgbouncer: PgBouncer, admin_client, capsys
):
    # Given Django's connections through PgBouncer, and a backlog of frames
    write_stream(3)
    call_command("stream_analysis", "start", "counts")

    # Then the admin lists tasks and frames, and the commands answer
    assert admin_client.get("/admin/stream_analysis/analysistask/").status_code == 200
    assert admin_client.get("/admin/testapp/countframe/").status_code == 200
    call_command("stream_analysis", "status")
    assert "counts" in capsys.readouterr().out
