"""The test settings with the legacy client's tasks, written as for the original.

Worker and scheduler processes of tests/workers/test_moving_from_the_original.py run
with these settings (the test process sets the same tasks).
"""

from tests.settings import *  # noqa: F403

ANALYSIS_TIME_FRAME_TASKS = {
    "thermometer": {
        "name": "Thermometer",
        "frame_class_path": "tests.legacy_client.models.TimeFrame",
        "autostart": True,
    },
    "demo": {
        "name": "Demo Analysis",
        "frame_class_path": "tests.legacy_client.models.DemoTimeFrame",
    },
    "map": {
        "name": "Map",
        "frame_class_path": "tests.legacy_client.models.MapTimeFrame",
        "autostart": False,
    },
}
