"""The coordinator: frames created once, under racing ticks, and always drained."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import dramatiq
import pytest
from django.db import connection, transaction
from django.utils import timezone
from dramatiq import Message
from dramatiq.middleware import CurrentMessage

from actors import queue, tasks
from stream_analysis import coordinator, grid
from stream_analysis.models import AnalysisTask
from tests.conftest import at, held_in_another_transaction
from tests.streams import write_stream
from tests.testapp.models import CountFrame, Item


def run_in_threads(count: int, target) -> list:
    """Run ``target()`` in ``count`` threads released at the same instant; return results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count
    errors: list = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target()
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return results


def tick(key: str = "counts") -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require(key), count_limit=1000)


def test_three_coordinators_ticking_at_once_create_each_frame_once(live_db):
    write_stream(300)

    results = run_in_threads(3, tick)

    assert sum(r.created for r in results) == 300
    assert CountFrame.objects.count() == 300
    starts = list(CountFrame.objects.order_by("start_time").values_list("start_time", flat=True))
    assert starts == [at(15 * i) for i in range(300)]


def test_racing_inserts_without_the_lock_are_still_no_ops_thanks_to_the_unique_start(live_db):
    # The advisory lock is an optimisation; the UNIQUE start_time is the guarantee.
    planned = grid.FrameRange(first=at(0), last=at(15 * 999), duration=timedelta(seconds=15))

    def insert() -> int:
        with transaction.atomic():
            return coordinator.insert_frames(CountFrame, planned)

    created = run_in_threads(3, insert)

    assert sum(created) == 1000
    assert CountFrame.objects.count() == 1000


def test_a_coordinator_tick_that_finds_the_task_locked_creates_nothing(live_db):
    write_stream(10)

    with held_in_another_transaction(lambda: coordinator.try_lock("counts")):
        result = tick()

    assert result.locked is False
    assert CountFrame.objects.count() == 0
    assert tick().created == 10  # once released, the next tick does the work


def test_a_tick_that_finds_the_task_locked_rearms_it_in_case_the_holder_dies(live_db):
    # Given a task whose lock another tick holds (on RabbitMQ, a killed worker's tick is
    # redelivered at once, while its dead server process may still hold the lock)
    write_stream(10)
    task = AnalysisTask.require("counts")

    # When a tick comes, and then another
    with held_in_another_transaction(lambda: coordinator.try_lock("counts")):
        tasks.coordinate.fn("counts")
        tasks.coordinate.fn("counts")

    # Then it leaves one re-arm a second later (one only: the second finds it pending),
    # so the work is done even if the holder never commits
    task.refresh_from_db()
    assert task.rearm_at is not None
    assert timedelta(0) < task.rearm_at - timezone.now() <= coordinator.MIN_REARM
    assert delayed_coordinate_messages("counts") == 1
    assert CountFrame.objects.count() == 0


@pytest.mark.django_db
def test_a_stopped_task_creates_no_frames():
    write_stream(10)
    AnalysisTask.require("counts").cancel()

    result = tick()

    assert result.running is False
    assert CountFrame.objects.count() == 0


@pytest.mark.django_db
def test_frames_are_created_only_once_closed_and_continue_where_they_stopped():
    # Frame 8 [120 s, 135 s) holds the latest item (frame 9 has none): it is still open
    write_stream(10, closing_item=False)
    assert tick().created == 8

    # An item at exactly 135 s closes frame 8, and only frame 8
    Item.objects.create(created_at=at(135))
    assert tick().created == 1
    assert CountFrame.get_latest().start_time == at(120)

    # A duplicate tick does nothing
    assert tick().created == 0


@pytest.mark.django_db
def test_fields_with_python_only_defaults_get_them_on_bulk_created_frames():
    write_stream(3)
    tick()
    assert set(CountFrame.objects.values_list("item_count", flat=True)) == {0}
    assert set(CountFrame.objects.values_list("calculated", "failed", "attempts")) == {
        (False, False, 0)
    }


@pytest.mark.django_db
def test_at_most_one_rearm_is_pending_per_task():
    task = AnalysisTask.require("counts")

    assert coordinator.claim_rearm(task, 5.0) is True
    assert coordinator.claim_rearm(task, 5.0) is False

    AnalysisTask.objects.filter(pk=task.pk).update(rearm_at=timezone.now() - timedelta(seconds=1))
    assert coordinator.claim_rearm(task, 5.0) is True


@pytest.mark.django_db
def test_the_message_that_claimed_the_pending_rearm_may_claim_it_again():
    task = AnalysisTask.require("counts")

    assert coordinator.claim_rearm(task, 5.0, "message-a") is True
    assert coordinator.claim_rearm(task, 5.0, "message-b") is False
    assert coordinator.claim_rearm(task, 5.0) is False
    assert coordinator.claim_rearm(task, 5.0, "message-a") is True  # message-a came back
    assert AnalysisTask.objects.get(pk=task.pk).rearm_by == "message-a"


@contextmanager
def processing(message: Message) -> Iterator[None]:
    """Run as a worker runs ``message``: Dramatiq's CurrentMessage middleware names it."""
    middleware = CurrentMessage()
    middleware.before_process_message(dramatiq.get_broker(), message)
    try:
        yield
    finally:
        middleware.after_process_message(dramatiq.get_broker(), message)


def test_a_tick_redelivered_after_it_claimed_its_rearm_and_died_sends_the_rearm(live_db):
    # Given a tick (message A) that claimed the task's re-arm, and whose worker was
    # killed before it sent it
    write_stream(10)
    task = AnalysisTask.require("counts")
    dead_tick = tasks.coordinate.message("counts")
    assert coordinator.claim_rearm(task, 15.0, dead_tick.message_id) is True

    # When another tick comes first, then message A again (the broker's redelivery)
    with processing(tasks.coordinate.message("counts")):
        tasks.coordinate.fn("counts")
    assert delayed_coordinate_messages("counts") == 0  # the re-arm is A's to send
    with processing(dead_tick):
        tasks.coordinate.fn("counts")

    # Then the redelivered tick sends the re-arm its first run never sent
    assert delayed_coordinate_messages("counts") == 1
    task.refresh_from_db()
    assert task.rearm_by == dead_tick.message_id


@pytest.mark.django_db
def test_sub_minute_frames_ask_for_a_rearm_at_the_next_close():
    write_stream(4)  # latest item at 60 s: frames up to [45, 60) are closed
    result = tick()
    assert result.rearm_in == pytest.approx(15.0)


@pytest.mark.django_db
def test_an_empty_stream_asks_for_a_rearm_after_one_duration():
    result = tick()  # no item yet: no frame, but look again when one could have closed
    assert (result.created, result.rearm_in) == (0, pytest.approx(15.0))


def test_pending_frames_left_without_messages_get_calculate_messages_at_the_next_tick(live_db):
    # Given frames created by a coordinator that crashed before sending any message
    write_stream(50)
    tick()
    assert queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, "counts") == 0

    # When the next tick runs (twice, as a duplicate scheduler would)
    tasks.coordinate.fn("counts")
    tasks.coordinate.fn("counts")

    # Then calculate messages are queued, but no more than the configured concurrency
    queued = queue.count_queued(tasks.QUEUE, tasks.calculate.actor_name, "counts")
    assert queued == 3  # ceil(50 frames / batch of 20), under CONCURRENCY = 4


# -- runaway guards ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_tick_creates_at_most_the_capped_number_of_frames_and_later_ticks_the_rest(settings):
    settings.STREAM_ANALYSIS_MAX_FRAMES_PER_TICK = 4
    write_stream(10)

    results = [tick() for _ in range(4)]

    assert [(r.created, r.capped) for r in results] == [
        (4, True), (4, True), (2, False), (0, False)
    ]  # fmt: skip
    starts = list(CountFrame.objects.order_by("start_time").values_list("start_time", flat=True))
    assert starts == [at(15 * i) for i in range(10)]


def coordinate_messages_due_now(key: str) -> int:
    """Coordinator messages for ``key`` in the queue itself (not delayed ones)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s AND state = 'queued'"
            " AND message->>'actor_name' = %s AND message->'args'->>0 = %s",
            [tasks.QUEUE, tasks.coordinate.actor_name, key],
        )
        return cursor.fetchone()[0]


def delayed_coordinate_messages(key: str) -> int:
    """Coordinator messages for ``key`` waiting for their delay (re-arms): Dramatiq's
    delay queue, ``<queue>.DQ``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM dramatiq.queue WHERE queue_name = %s AND state = 'queued'"
            " AND message->>'actor_name' = %s AND message->'args'->>0 = %s",
            [f"{tasks.QUEUE}.DQ", tasks.coordinate.actor_name, key],
        )
        return cursor.fetchone()[0]


def test_a_capped_tick_sends_the_next_tick_at_once_not_a_minute_later(live_db, settings):
    settings.STREAM_ANALYSIS_MAX_FRAMES_PER_TICK = 4
    write_stream(10)

    tasks.coordinate.fn("counts")

    assert CountFrame.objects.count() == 4
    assert coordinate_messages_due_now("counts") == 1
    # And the last capped tick hands over to the usual re-arm instead
    tasks.coordinate.fn("counts")
    tasks.coordinate.fn("counts")
    assert CountFrame.objects.count() == 10
    assert coordinate_messages_due_now("counts") == 2


@pytest.fixture
def statement_timeout():
    """Statements of this connection fail after 5 s (as a production server might set)."""
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = '5s'")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")


@pytest.mark.django_db
@pytest.mark.usefixtures("statement_timeout")
def test_an_item_dated_2100_is_reported_once_and_not_followed(caplog):
    # Given a stream of 10 closed frames, and one item stamped in the year 2100
    write_stream(10)
    Item.objects.create(created_at=at(0).replace(year=2100))

    # When the coordinator ticks twice
    began = time.monotonic()
    first, second = tick(), tick()
    elapsed = time.monotonic() - began

    # Then the frames up to the stream's real latest item exist, and no more; the ticks are short
    assert (first.created, second.created) == (10, 0)
    assert CountFrame.objects.latest("start_time").start_time == at(15 * 9)
    assert elapsed < 3
    # And the item is reported once, with its time and the fix
    reports = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(reports) == 1, reports
    assert "the stream's latest item is at 2100-01-01T00:00:00+00:00" in reports[0]
    assert "Correct or delete that item, or raise STREAM_ANALYSIS_FUTURE_TOLERANCE" in reports[0]
