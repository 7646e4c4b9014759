"""Sub-minute frames: the coordinator re-arms itself between the scheduler's minutes."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from actors import queue, tasks
from stream_analysis.models import AnalysisTask
from tests.brokers import Transport
from tests.conftest import wait_until
from tests.testapp.models import Item, SecondFrame

pytestmark = pytest.mark.workers


def test_one_tick_keeps_a_live_one_second_task_running_by_rearming(workers):
    # Given a live stream and a started task with one-second frames
    AnalysisTask.require("seconds").schedule()
    workers.start(processes=1, threads=4)
    Item.objects.create(created_at=timezone.now())

    # When a single tick is sent and the stream keeps flowing for five seconds
    tasks.coordinate.send("seconds")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a live stream: an item every 100 ms, stamped now
        Item.objects.create(created_at=timezone.now())
        time.sleep(0.1)
    first = SecondFrame.objects.order_by("start_time").first()
    assert first is not None

    # Then frames kept being created and calculated with no further tick from outside
    wait_until(
        lambda: SecondFrame.objects.filter(
            calculated=True, start_time__gte=first.start_time + timedelta(seconds=3)
        ).exists(),
        30,
        "frames three seconds after the first, with no periodic tick",
    )
    starts = list(SecondFrame.objects.order_by("start_time").values_list("start_time", flat=True))
    assert starts == [first.start_time + timedelta(seconds=i) for i in range(len(starts))]
    task = AnalysisTask.require("seconds")
    assert task.rearm_at is not None
    # claimed by a worker's message, named by Dramatiq's CurrentMessage middleware: a
    # redelivery of that message may claim it again (tests/db/test_coordinator.py)
    assert task.rearm_by and str(uuid.UUID(task.rearm_by)) == task.rearm_by


def test_a_task_started_on_an_empty_stream_makes_frames_once_items_come(
    workers, run_transport: Transport | None
):
    # Given a one-second task started while its stream is empty, and ticked once, here
    AnalysisTask.require("seconds").schedule()
    if run_transport is None:  # the start's tick, dropped
        queue.delete_queued(tasks.QUEUE, [tasks.coordinate.actor_name], "seconds")
    else:  # on RabbitMQ or Redis (TEST_BROKER)
        run_transport.empty()
    tasks.coordinate.fn("seconds")
    assert not SecondFrame.objects.exists()
    workers.start(processes=1, threads=2)

    # When items start to arrive, and no tick comes from outside (no scheduler runs here)
    def live_item_then_calculated_frame() -> bool:
        Item.objects.create(created_at=timezone.now())
        return SecondFrame.objects.filter(calculated=True).exists()

    # Then the coordinator, re-armed by the empty tick, creates frames; workers calculate them
    wait_until(live_item_then_calculated_frame, 30, "a calculated frame with no outside tick")
