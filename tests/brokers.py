"""The brokers the tests run on: dramatiq-postgres by default, RabbitMQ or Redis too.

A whole test run can carry its messages on RabbitMQ or Redis (the services run
on these machines at their standard ports): ``TEST_BROKER=rabbitmq`` or
``TEST_BROKER=redis``. tests/settings.py then names a queue (RabbitMQ) or a
namespace (Redis) of the run's own, which the workers and schedulers the tests
start inherit; tests/conftest.py empties it after each test and deletes it at the end.

:class:`Transport` is such a broker of a test's own, beside the run's.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dramatiq
import pytest

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672"
REDIS_URL = "redis://127.0.0.1:6379/11"
#: The queue's name on Redis (a namespace tells the runs apart there).
REDIS_QUEUE = "stream_analysis"
BROKERS = ("postgres", "rabbitmq", "redis")

#: The broker of this test run (TEST_BROKER).
RUN_BROKER = os.environ.get("TEST_BROKER", "postgres")
if RUN_BROKER not in BROKERS:
    raise RuntimeError(f"TEST_BROKER={RUN_BROKER!r}: use one of {', '.join(BROKERS)}")


class Transport:
    """A RabbitMQ queue or a Redis namespace, as a worker builds it from tests/settings.py."""

    def __init__(self, kind: str, name: str | None = None) -> None:
        self.kind = kind
        self.name = name or f"sa_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.broker: Any = None

    def env(self) -> dict[str, str]:
        """The worker's environment: the broker, and the queue or namespace of this test."""
        if self.kind == "rabbitmq":
            return {"TEST_BROKER": "rabbitmq", "STREAM_ANALYSIS_QUEUE": self.name}
        return {"TEST_BROKER": "redis", "TEST_REDIS_NAMESPACE": self.name,
                "STREAM_ANALYSIS_QUEUE": REDIS_QUEUE}  # fmt: skip

    @property
    def queue(self) -> str:
        return self.name if self.kind == "rabbitmq" else REDIS_QUEUE

    def open(self) -> Transport:
        if self.kind == "rabbitmq":
            from dramatiq.brokers.rabbitmq import RabbitmqBroker

            self.broker = RabbitmqBroker(url=RABBITMQ_URL)
        else:
            from dramatiq.brokers.redis import RedisBroker

            self.broker = RedisBroker(url=REDIS_URL, namespace=self.name)
        self.broker.declare_queue(self.queue)
        return self

    def send(self, actor_name: str, *args: Any) -> None:
        message = dramatiq.Message(
            queue_name=self.queue, actor_name=actor_name, args=args, kwargs={}, options={}
        )
        self.broker.enqueue(message)

    def empty(self) -> None:
        """Drop every message: queued, delayed, and those a stopped or killed worker held.

        On RabbitMQ, once no worker consumes any more (a dead worker's unacknowledged
        messages are back in the queue by then)."""
        if self.kind == "rabbitmq":
            from tests.conftest import poll

            with rabbitmq() as broker:
                queues = (self.name, f"{self.name}.DQ")
                poll(lambda: not any(consumers(broker, q) for q in queues), 30, "no consumer")
                broker.flush(self.name)
        else:
            client = self.broker.client
            keys = list(client.scan_iter(f"{self.name}:*"))  # the acks of dead workers too
            if keys:
                client.delete(*keys)

    def remove(self) -> None:
        if self.broker is None:
            return
        if self.kind == "rabbitmq":
            with rabbitmq() as broker:
                for queue in (self.name, f"{self.name}.DQ", f"{self.name}.XQ"):
                    broker.channel.queue_delete(queue)
        else:
            self.empty()
        self.broker.close()


@contextmanager
def rabbitmq() -> Iterator[Any]:
    """A RabbitMQ broker on a connection of its own, closed afterwards: one left idle
    through a long test misses its heartbeats, and RabbitMQ closes it."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    broker = RabbitmqBroker(url=RABBITMQ_URL)
    try:
        yield broker
    finally:
        broker.close()


def consumers(broker: Any, queue: str) -> int:
    """How many consumers a RabbitMQ queue has (0 for one that does not exist)."""
    import pika.exceptions

    try:
        return int(broker.channel.queue_declare(queue, passive=True).method.consumer_count)
    except pika.exceptions.ChannelClosedByBroker:  # 404: not declared (yet)
        del broker.channel
        return 0


def run_transport() -> Transport | None:
    """The run's own queue (RabbitMQ) or namespace (Redis), open, as tests/settings.py
    names it; None on dramatiq-postgres (each run has a database of its own there)."""
    from django.conf import settings

    if RUN_BROKER == "postgres":
        return None
    if RUN_BROKER == "rabbitmq":
        return Transport("rabbitmq", settings.STREAM_ANALYSIS_QUEUE).open()
    return Transport("redis", settings.DRAMATIQ_BROKER["OPTIONS"]["namespace"]).open()


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


#: A worker process's "ready" line in its log, with the process's id.
READY = re.compile(r"\[PID (\d+)\] \[MainThread\] \[dramatiq\.WorkerProcess\(\d+\)\] "
                   r"\[INFO\] Worker process is ready for action")  # fmt: skip


def ready_processes(logs: Iterable[Path]) -> set[str]:
    """The worker processes that logged they are ready, as "log:pid" (each a process
    once, a restarted one anew): on RabbitMQ and Redis, which keep no table of workers."""
    return {
        f"{path.name}:{pid}"
        for path in logs
        if path.exists()
        for pid in READY.findall(path.read_text(errors="replace"))
    }
