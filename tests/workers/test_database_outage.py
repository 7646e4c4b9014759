"""A worker started while the database is unreachable says so, then recovers by itself."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import pytest
from django.db import connection

from actors import tasks
from tests.conftest import wait_until
from tests.streams import write_stream
from tests.testapp.models import CountFrame

pytestmark = pytest.mark.workers


class DatabaseDoor:
    """A TCP port on 127.0.0.1 that forwards to the test database once opened.

    Until :meth:`open`, nothing listens there: connections are refused, as for a
    database server that is down.
    """

    def __init__(self, settings: dict) -> None:
        host = settings.get("HOST") or settings.get("OPTIONS", {}).get("host") or "127.0.0.1"
        self.target_host = str(host)
        self.target_port = int(
            settings.get("PORT") or settings.get("OPTIONS", {}).get("port") or 5432
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.target_host.startswith("/"):
            path = Path(self.target_host) / f".s.PGSQL.{self.target_port}"
            return await asyncio.open_unix_connection(str(path))
        return await asyncio.open_connection(self.target_host, self.target_port)

    async def _serve(self, reader, writer) -> None:
        upstream_reader, upstream_writer = await self._connect()
        self.writers += [writer, upstream_writer]

        async def pipe(source, sink) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    def open(self) -> None:
        async def start() -> asyncio.base_events.Server:
            return await asyncio.start_server(self._serve, "127.0.0.1", self.port)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    def close(self) -> None:
        """Stop listening and cut every forwarded connection, then stop the loop."""

        async def shut() -> None:
            if self.server is not None:
                self.server.close()
                await self.server.wait_closed()
            for writer in self.writers:
                writer.close()
            await asyncio.gather(*(w.wait_closed() for w in self.writers), return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def test_a_worker_started_while_the_database_is_down_logs_it_and_recovers(workers):
    # Given frames to calculate, and a worker whose database address answers nothing
    write_stream(30)
    door = DatabaseDoor(connection.settings_dict)
    name = connection.settings_dict["NAME"]
    url = f"postgres://postgres@127.0.0.1:{door.port}/{name}"
    try:
        workers.start(processes=1, threads=2, wait=False, DATABASE_URL=url)

        # Then it says clearly that it cannot connect, and keeps trying
        wait_until(lambda: "connection failed" in workers.logs(), 60, "a connection error logged")
        assert "Connection refused" in workers.logs()
        # (and that it could not check its size against max_connections: it goes on)
        wait_until(
            lambda: "could not read max_connections" in workers.logs(), 60, "the check skipped"
        )

        # When the database comes back
        door.open()
        tasks.coordinate.send("counts")

        # Then the worker recovers without a restart and calculates every frame
        wait_until(
            lambda: CountFrame.objects.filter(calculated=True).count() == 30, 150, "30 frames"
        )
    finally:
        workers.stop()  # before the door closes: the worker's sessions end cleanly
        door.close()
