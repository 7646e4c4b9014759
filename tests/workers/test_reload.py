"""Auto reload: a worker started with ``--watch`` picks up an edited ``calculate()``.

The original reloaded the frame class at every run; here ``rundramatiq --watch DIR``
(dramatiq's ``--watch``, with watchdog from the ``dramatiq[watch]`` extra)
restarts the worker processes when a ``.py`` file under DIR changes, as
``Procfile.dev`` does for the demo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from actors.tasks import calculate
from tests.conftest import REPO, Workers, at, wait_until
from tests.testapp.models import CountFrame, Item

pytestmark = pytest.mark.workers

# A frame model of its own, outside the installed apps' code: a proxy of
# CountFrame (same table) whose calculate() the test edits.
FRAME_MODULE = """
from tests.testapp.models import CountFrame


class ReloadFrame(CountFrame):
    class Meta:
        proxy = True
        app_label = "testapp"

    def calculate(self, stream_data):
        self.item_count = len(stream_data) + 1000
"""

SETTINGS_MODULE = """
from tests.settings import *  # noqa: F403

ANALYSIS_TIME_FRAME_TASKS = {
    "reload": {
        "name": "Reload",
        "frame_class_path": "reload_frame.ReloadFrame",
        "autostart": True,
    },
}
"""


def calculated_count(start) -> int | None:
    frame = CountFrame.objects.filter(start_time=start, calculated=True).first()
    return None if frame is None else frame.item_count


def calculate_frame(start, items: int) -> int:
    """Make a pending frame with ``items`` items, have the workers calculate it: its count."""
    Item.objects.bulk_create(Item(created_at=start) for _ in range(items))
    CountFrame.objects.create(start_time=start)
    calculate.send("reload")
    return wait_until(lambda: calculated_count(start), 20, f"the frame at {start} calculated")


def test_editing_calculate_takes_effect_without_a_restart(workers: Workers, tmp_path: Path):
    # Given a worker watching the folder of a frame module whose calculate() adds 1000
    code = tmp_path / "code"
    code.mkdir()
    frame_module = code / "reload_frame.py"
    frame_module.write_text(FRAME_MODULE)
    (code / "reload_settings.py").write_text(SETTINGS_MODULE)
    workers.start(
        args=["--watch", str(code)],
        DJANGO_SETTINGS_MODULE="reload_settings",
        PYTHONPATH=f"{code}:{REPO}",
        PYTHONDONTWRITEBYTECODE="1",  # no stale .pyc whatever the edit's timestamp
        # dramatiq restarts itself as "python -m dramatiq", looked up on PATH: the
        # virtualenv's python must come first there (demo.sh puts .venv/bin first too).
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
    )
    assert calculate_frame(at(0), items=3) == 1003

    # When calculate() is edited while the worker runs
    before = workers.up()
    frame_module.write_text(FRAME_MODULE.replace("+ 1000", "+ 20000"))
    wait_until(lambda: workers.up() - before, 25, "the worker to restart")

    # Then the next frame is calculated by the new code
    assert calculate_frame(at(15), items=2) == 20002
    assert calculated_count(at(0)) == 1003  # the earlier result stays as it was
