"""Any Dramatiq broker carries the tokens: a real worker drains a backlog on each.

PostgreSQL stays the queue of frames and the lock; the broker only says "drain
task X". RabbitMQ (127.0.0.1:5672, guest) and Redis (127.0.0.1:6379) run on
these machines; each test uses a queue name or Redis namespace of its own and
deletes it afterwards. On RabbitMQ and Redis the top-up cannot count a task's
queued messages (actors/queue.py), so it sends them anyway: still, each frame is
calculated exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.brokers import Transport, transport_or_skip
from tests.conftest import wait_until
from tests.streams import assert_every_frame_exactly_once, calculated, write_stream


@pytest.fixture(params=["rabbitmq", "redis"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    yield from transport_or_skip(request.param)


@pytest.mark.workers
def test_a_worker_on_rabbitmq_or_redis_drains_a_backlog_each_frame_exactly_once(
    transport: Transport, workers
):
    # Given 80 frames, and a worker whose broker is RabbitMQ or Redis
    expected = write_stream(80)
    workers.start(processes=1, threads=4, wait=False, **transport.env())

    # When the coordinator's tick comes through that broker
    transport.send("coordinate", "counts")

    # Then the coordinator's top-up (which cannot count queued messages there) and the
    # calculators' hand-overs drain the backlog: every frame calculated exactly once
    wait_until(lambda: calculated() == 80, 90, "80 calculated frames")
    assert_every_frame_exactly_once(expected)
