"""Any Dramatiq broker carries the tokens: a real worker drains a backlog on each.

PostgreSQL stays the queue of frames and the lock; the broker only says "drain
task X". RabbitMQ (127.0.0.1:5672, guest) and Redis (127.0.0.1:6379) run on
these machines; each test uses a queue name or Redis namespace of its own and
deletes it afterwards. On RabbitMQ and Redis the top-up cannot count a task's
queued messages (actors/queue.py), so it sends them anyway: still, each frame is
calculated exactly once.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import dramatiq
import pytest

from actors import tasks
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


@pytest.fixture
def rabbitmq_as_the_broker(live_db: None) -> Iterator[None]:
    """dramatiq.get_broker() is a RabbitMQ broker for the test (the actors stay bound to
    dramatiq-postgres: what they send lands in its table, where the test can count it)."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    from tests.brokers import RABBITMQ_URL

    previous = dramatiq.get_broker()
    dramatiq.set_broker(RabbitmqBroker(url=RABBITMQ_URL))
    yield
    dramatiq.get_broker().close()
    dramatiq.set_broker(previous)


@pytest.mark.usefixtures("rabbitmq_as_the_broker")
def test_on_rabbitmq_the_top_up_cannot_count_queued_messages_and_sends_all_it_wants():
    from actors import queue

    assert queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, "counts") is None
    # 100 due frames, BATCH_SIZE 20, CONCURRENCY 4: four messages, twice over
    assert tasks.top_up("counts", 100) == 4
    assert tasks.top_up("counts", 100) == 4


@pytest.mark.usefixtures("rabbitmq_as_the_broker")
def test_on_rabbitmq_clear_queue_deletes_the_frames_and_says_the_messages_stay(caplog):
    from django.core.management import call_command

    write_stream(3)
    call_command("stream_analysis", "start", "counts")
    tasks.coordinate.fn("counts")
    out = io.StringIO()

    call_command("clear_queue", "counts", "--force", stdout=out)

    assert "Cleared 0 queued messages and 3 pending frames." in out.getvalue()
    assert "RabbitmqBroker cannot delete one task's messages" in caplog.text
