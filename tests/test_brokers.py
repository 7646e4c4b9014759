"""Any Dramatiq broker carries the tokens: a real worker drains a backlog on each.

PostgreSQL stays the queue of frames and the lock; the broker only says "drain
task X". RabbitMQ (127.0.0.1:5672, guest) and Redis (127.0.0.1:6379) run on
these machines; each test uses a queue name or Redis namespace of its own and
deletes it afterwards. On RabbitMQ and Redis the top-up cannot count a task's
queued messages (actors/queue.py), so it sends them anyway: still, each frame is
calculated exactly once.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

from tests.conftest import wait_until
from tests.streams import write_stream
from tests.test_workers import assert_every_frame_exactly_once, calculated

pytestmark = pytest.mark.workers

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672"
REDIS_URL = "redis://127.0.0.1:6379/11"


class Transport:
    """A broker of the test's own, as the worker builds it from tests/settings.py."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"sa_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.broker: Any = None

    def env(self) -> dict[str, str]:
        """The worker's environment: the broker, and the queue or namespace of this test."""
        if self.kind == "rabbitmq":
            return {"TEST_BROKER": "rabbitmq", "STREAM_ANALYSIS_QUEUE": self.name}
        return {"TEST_BROKER": "redis", "TEST_REDIS_NAMESPACE": self.name}

    @property
    def queue(self) -> str:
        return self.name if self.kind == "rabbitmq" else "stream_analysis"

    def open(self) -> None:
        if self.kind == "rabbitmq":
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            self.broker = RabbitmqBroker(url=RABBITMQ_URL)
        else:
            from dramatiq.brokers.redis import RedisBroker

            self.broker = RedisBroker(url=REDIS_URL, namespace=self.name)
        self.broker.declare_queue(self.queue)

    def send(self, actor_name: str, *args: Any) -> None:
        message = dramatiq.Message(
            queue_name=self.queue, actor_name=actor_name, args=args, kwargs={}, options={}
        )
        self.broker.enqueue(message)

    def remove(self) -> None:
        if self.broker is None:
            return
        if self.kind == "rabbitmq":
            channel = self.broker.channel
            for queue in (self.name, f"{self.name}.DQ", f"{self.name}.XQ"):
                channel.queue_delete(queue)
        else:
            client = self.broker.client
            keys = list(client.scan_iter(f"{self.name}:*"))
            if keys:
                client.delete(*keys)
        self.broker.close()


@pytest.fixture(params=["rabbitmq", "redis"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    made = Transport(request.param)
    try:
        made.open()
    except Exception as error:  # the service is not running here
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{request.param} is not reachable: {error}")
    yield made
    made.remove()


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
