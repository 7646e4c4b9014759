"""The management commands with real workers: ``backfill_analysis --wait`` waits for them,
and what ``recompute`` queues they calculate once (tests/db/test_commands.py: the rest)."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError

from actors import tasks
from tests.commands import RECOMPUTE_ALL, backfilled, frames, items, run, starts
from tests.conftest import at, configure_only, wait_until
from tests.testapp.models import CalculationLog, CountFrame

pytestmark = pytest.mark.usefixtures("three_tasks")


@pytest.mark.workers
def test_backfill_with_wait_returns_once_the_workers_have_calculated_every_frame(workers):
    items(1, 100)
    workers.start(processes=1, threads=4)

    out = backfilled("counts", "--wait")

    assert out.splitlines() == [
        "counts: created 6 frames, reset 0.",
        "Waiting for 6 frames to be calculated (Ctrl-C stops watching; the workers go on).",
        "counts: 6 done, 0 failed.",
    ]
    assert CountFrame.objects.filter(calculated=True).count() == 6
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    assert sorted(runs.values_list("start_time", flat=True)) == [at(s) for s in range(0, 90, 15)]


@pytest.mark.workers
def test_recompute_twice_queues_each_frame_once_and_workers_calculate_it_once(workers):
    # Given six calculated frames (written directly: no calculation logged)
    items(1, 100)
    frames(CountFrame, *range(0, 90, 15), calculated=True, calculated_at=at(200))
    argv = ("stream_analysis", "recompute", "counts", "--from", "2026-01-01T00:00:20Z",
            "--to", "2026-01-01T00:00:50Z")  # fmt: skip

    # When the range is recomputed twice
    first, second = run(*argv), run(*argv)

    # Then the second run changes nothing: the same three frames are pending, once
    assert first == second
    assert starts(CountFrame, calculated=False) == [at(15), at(30), at(45)]
    # And real workers calculate each of them exactly once
    workers.start(processes=1, threads=4)
    wait_until(lambda: not CountFrame.objects.filter(calculated=False).exists(), 60, "recompute")
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    assert sorted(runs.values_list("start_time", flat=True)) == [at(15), at(30), at(45)]
    assert CountFrame.objects.get(start_time=at(15)).item_count == 0
    assert CountFrame.objects.get(start_time=at(0)).item_count == 0  # untouched


def item_counts() -> dict:
    return dict(CountFrame.objects.values_list("start_time", "item_count"))


@pytest.mark.workers
def test_recompute_refuses_frames_whose_data_was_cleaned_up_and_marks_them_if_told(
    workers, settings
):
    # Given four frames of 15 items each, calculated by a real worker
    configure_only(settings, "counts")
    items(*(s + k for s in range(0, 60, 15) for k in range(15)), 60)
    workers.start(processes=1, threads=2)
    tasks.coordinate.send("counts")
    wait_until(lambda: CountFrame.objects.filter(calculated=True).count() == 4, 60, "4 frames")
    assert set(item_counts().values()) == {15}
    # And a real cleanup that deleted the items of the first three
    assert run("cleanup_streams") == "Deleted 45 stream items.\n"

    # When all four are recomputed, they are refused, and nothing changes
    with pytest.raises(CommandError) as refused:
        run(*RECOMPUTE_ALL)

    assert str(refused.value) == (
        "counts: 3 of the 4 frames start before 2026-01-01 00:00:45 UTC, the frame of the "
        "stream's earliest stored item: their data may have been cleaned up, and recomputing "
        "them would replace their results with partial ones. Nothing changed. Start --from "
        "there, or pass --allow-missing-data to recompute them anyway, marked missing_data."
    )
    assert CountFrame.objects.filter(calculated=True).count() == 4
    # When told, they are recomputed by the worker and marked missing_data
    out = run(*RECOMPUTE_ALL, "--allow-missing-data")

    assert out.splitlines()[1] == "3 of them may have lost stream data: marked missing_data."
    wait_until(
        lambda: CountFrame.objects.filter(calculated=True).count() == 4, 60, "the recompute"
    )
    marked = CountFrame.objects.filter(missing_data=True).order_by("start_time")
    assert [(f.start_time, f.item_count) for f in marked] == [(at(0), 0), (at(15), 0), (at(30), 0)]
    assert CountFrame.objects.get(start_time=at(45)).item_count == 15
