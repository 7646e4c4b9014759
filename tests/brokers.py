"""RabbitMQ and Redis brokers of a test's own (the services run on these machines).

:class:`Transport` names a queue (RabbitMQ) or a namespace (Redis) of its own, gives
the environment that makes a worker (tests/settings.py) use it, sends messages to
it from the test, and deletes what it made.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest

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


def transport_or_skip(kind: str) -> Iterator[Transport]:
    """A fixture's body: an open :class:`Transport`, removed afterwards; skipped when the
    service is not reachable (a failure when CI is set)."""
    made = Transport(kind)
    try:
        made.open()
    except Exception as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{kind} is not reachable: {error}")
    try:
        yield made
    finally:
        made.remove()
