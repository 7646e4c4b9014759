"""The coordinator on real worker processes: racing coordinate messages still calculate
each frame once (tests/db/test_coordinator.py: the coordinator in the database)."""

from __future__ import annotations

import pytest

from actors import tasks
from tests.conftest import wait_until
from tests.streams import write_stream
from tests.testapp.models import CalculationLog, CountFrame


@pytest.mark.workers
def test_three_coordinator_messages_racing_on_three_processes_calculate_each_frame_once(workers):
    expected = write_stream(60)
    for _ in range(3):
        workers.start(processes=1, threads=2)
    for _ in range(3):
        tasks.coordinate.send("counts")

    wait_until(lambda: CountFrame.objects.filter(calculated=True).count() == 60, 60, "60 frames")
    assert CountFrame.objects.count() == 60
    assert CalculationLog.objects.filter(frame_model="CountFrame").count() == 60
    assert {f.start_time: f.item_count for f in CountFrame.objects.all()} == dict(expected)
