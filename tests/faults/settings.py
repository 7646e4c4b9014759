"""Settings of the fault suite's worker and scheduler processes.

The test suite's settings, with two changes. Only the tasks a scenario names in
``FAULT_TASKS`` are configured, all started: a scenario's workers tick and
calculate nothing else. And the broker declares a worker dead after 5 s without a
heartbeat, reaped every 2 s (defaults: 20 s and 30 s), so that the messages a
killed worker held come back within seconds and a scenario stays short.
"""

import os

from tests.settings import *  # noqa: F403
from tests.settings import ANALYSIS_TIME_FRAME_TASKS as ALL_TASKS
from tests.settings import BROKER_OPTIONS, test_broker

ALL_TASKS = {
    **ALL_TASKS,
    # The batch path among the scenarios: SecondFrame's stream, counted by AGGREGATES.
    "seconds_sql": {
        "name": "Second counts by AGGREGATES",
        "frame_class_path": "tests.testapp.models.SecondSqlFrame",
        "autostart": True,
    },
}
ANALYSIS_TIME_FRAME_TASKS = {
    key: {**ALL_TASKS[key], "autostart": True}
    for key in os.environ.get("FAULT_TASKS", "seconds").split(",")
}

# A frame's time limit of 10 s (the suite's frames take 30 ms; scenario 6 sets its own): a
# rollup sees a source frame's recalculation TIME_BUDGET + FRAME_TIME_LIMIT after it, so
# this keeps the rollups' corrections within a scenario's drain time.
STREAM_ANALYSIS_FRAME_TIME_LIMIT = float(os.environ.get("STREAM_ANALYSIS_FRAME_TIME_LIMIT", "10"))

DRAMATIQ_BROKER = test_broker(
    heartbeat_interval=1.0, heartbeat_ttl=5.0, maintenance_interval=2.0, **BROKER_OPTIONS
)
