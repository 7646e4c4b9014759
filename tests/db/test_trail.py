"""The trail of late data: per frame how often, when and why it was recomputed; totals in
``status --json`` and the Prometheus metrics."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from stream_analysis import calculation, coordinator, operations
from stream_analysis.models import AnalysisTask
from tests.conftest import at, staff_user, wait_until
from tests.testapp.models import Arrival, Behaviour, FifteenFrame

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fifteen_task(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "fifteen": {
            "name": "15 s arrivals",
            "frame_class_path": "tests.testapp.models.FifteenFrame",
            "autostart": True,
        }
    }
    settings.STREAM_ANALYSIS_ARRIVAL_SETTLE = 0.05
    settings.STREAM_ANALYSIS_MAX_ATTEMPTS = 1


def tick() -> coordinator.TickResult:
    return coordinator.tick(AnalysisTask.require("fifteen"), count_limit=10_000)


def calculate() -> None:
    calculation.calculate_due_frames(FifteenFrame, deadline=time.monotonic() + 30)


def arrive(*seconds: float, ago: float = 0) -> None:
    """Items at these stream times, arrived ``ago`` seconds ago."""
    arrived = timezone.now() - timedelta(seconds=ago)
    Arrival.objects.bulk_create(Arrival(created_at=at(s), ingested_at=arrived) for s in seconds)


def arrive_before_the_first_tick(*seconds: float) -> None:
    # Long before the frames are calculated: an item that arrived less than ARRIVAL_SETTLE
    # before its frame's calculation may not have been visible to it, so it counts as late.
    arrive(*seconds, ago=1)


def frame(start: float) -> FifteenFrame:
    return FifteenFrame.objects.get(start_time=at(start))


def status_json() -> dict:
    out = StringIO()
    call_command("stream_analysis", "status", "fifteen", "--json", stdout=out)
    return json.loads(out.getvalue())[0]


def metrics(client) -> dict[tuple[str, tuple], float]:
    client.force_login(staff_user("view_analysistask"))
    found = {}
    for family in text_string_to_metric_families(client.get("/metrics").content.decode()):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_each_frame_counts_its_late_items_and_recomputes_and_the_totals_match(client):
    arrive_before_the_first_tick(1, 16, 31, 46, 100)
    tick()
    calculate()

    # When 3 late items arrive for frame 0, and 2 for frame 30, in two waves
    arrive(2, 3, 32)
    wait_until(lambda: tick().recomputed, 10, "the first wave")
    calculate()
    arrive(4, 33)
    wait_until(lambda: tick().recomputed, 10, "the second wave")
    calculate()

    # Then each frame counts its late items and its recomputes, and why
    assert (frame(0).late_items, frame(0).recomputes, frame(0).recompute_reason) == (3, 2, "late")
    assert (frame(30).late_items, frame(30).recomputes) == (2, 2)
    assert (frame(15).late_items, frame(15).recomputes, frame(15).recomputed_at) == (0, 0, None)
    assert frame(0).recomputed_at is not None and frame(0).item_count == 4

    # And status --json and the metrics count them
    data = status_json()
    assert data["late_items"] == 5
    assert data["recomputes"] == {"late": 4, "recompute": 0, "retry": 0}
    scraped = metrics(client)
    assert scraped["stream_analysis_late_items_total", (("task", "fifteen"),)] == 5
    late = ("stream_analysis_recomputes_total", (("reason", "late"), ("task", "fifteen")))
    assert scraped[late] == 4


def test_an_operator_recompute_and_a_retry_after_failure_are_told_apart():
    arrive_before_the_first_tick(1, 16, 31, 100)
    Behaviour.objects.create(frame_start=at(15), failures=1)
    tick()
    calculate()
    assert frame(15).status == "failed"

    operations.recompute(FifteenFrame, FifteenFrame.objects.filter(start_time=at(0)))
    operations.retry_failed(FifteenFrame)

    assert (frame(0).recomputes, frame(0).recompute_reason) == (1, "recompute")
    assert (frame(15).recomputes, frame(15).recompute_reason) == (1, "retry")
    assert (frame(30).recomputes, frame(30).recompute_reason) == (0, "")
    assert status_json()["recomputes"] == {"late": 0, "recompute": 1, "retry": 1}


def test_the_admin_filters_frames_recomputed_and_with_late_items(client):
    arrive_before_the_first_tick(1, 16, 31, 100)
    tick()
    calculate()
    arrive(2)
    wait_until(lambda: tick().recomputed, 10, "the late item")
    operations.recompute(FifteenFrame, FifteenFrame.objects.filter(start_time=at(30)))
    client.force_login(User.objects.create_superuser("admin", "a@example.invalid", "pw"))

    def shown(query: str) -> int:
        response = client.get(f"/admin/testapp/fifteenframe/?{query}")
        assert response.status_code == 200
        return response.context["cl"].result_count

    assert (shown("recomputed=yes"), shown("late_items=yes")) == (2, 1)
    assert shown("recomputed=no") == FifteenFrame.objects.count() - 2
    assert shown("late_items=no") == FifteenFrame.objects.count() - 1
    assert frame(0).late_items == 1 and frame(30).recompute_reason == "recompute"
