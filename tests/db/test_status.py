"""A task's status: counts, lag and timings as the admin and the commands show them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from stream_analysis.models import AnalysisTask
from stream_analysis.status import all_statuses, task_status
from tests.conftest import at
from tests.testapp.models import CountFrame, Item

pytestmark = pytest.mark.django_db


def test_the_status_counts_frames_and_measures_the_lag():
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 100))
    CountFrame.objects.create(
        start_time=at(0), calculated=True, analysis_time=0.5, cleanup_time=0.1
    )
    CountFrame.objects.create(
        start_time=at(15), calculated=True, analysis_time=1.5, cleanup_time=0.3
    )
    CountFrame.objects.create(start_time=at(30), failed=True, attempts=3)
    CountFrame.objects.create(start_time=at(45))

    status = task_status(AnalysisTask.require("counts"))

    assert (status.done, status.pending, status.failed) == (2, 1, 1)
    assert status.newest_calculated_end == at(30)
    assert status.stream_latest == at(100)
    assert status.lag_seconds == 70.0
    assert status.avg_analysis_time == pytest.approx(1.0)
    assert status.avg_cleanup_time == pytest.approx(0.2)
    assert status.cutoff == at(30)  # the oldest frame not calculated (the failed one)
    assert status.duration == timedelta(seconds=15)
    assert status.running is True


def test_a_task_with_nothing_calculated_has_no_lag_yet():
    status = task_status(AnalysisTask.require("counts"))

    assert (status.done, status.pending, status.failed, status.lag_seconds) == (0, 0, 0, None)


def test_the_json_form_has_iso_times_and_seconds():
    CountFrame.objects.create(start_time=at(0), calculated=True)
    Item.objects.create(created_at=at(20))

    data = task_status(AnalysisTask.require("counts")).as_json()

    assert data["duration"] == 15.0
    assert data["newest_calculated_end"] == "2026-01-01T00:00:15+00:00"
    assert data["lag_seconds"] == 5.0


def test_every_configured_task_has_a_status():
    keys = [status.key for status in all_statuses()]
    assert keys == sorted(keys) and "counts" in keys and "minutely" in keys
