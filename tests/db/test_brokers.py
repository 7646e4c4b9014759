"""Any Dramatiq broker carries the tokens: on RabbitMQ, which cannot count one task's
queued messages, the top-up sends all it wants and clear_queue says the messages stay
(actors/queue.py). tests/workers/test_brokers.py drains a backlog on RabbitMQ and Redis
with a real worker."""

from __future__ import annotations

import io
from collections.abc import Iterator

import dramatiq
import pytest

from actors import tasks
from tests.streams import write_stream


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
