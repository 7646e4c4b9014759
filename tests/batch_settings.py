"""The test settings with the batch path's tasks (for worker processes of its tests)."""

from tests.settings import *  # noqa: F403

BATCH_TASKS = {
    key: {"name": key, "frame_class_path": f"tests.testapp.models.{name}", "autostart": True}
    for key, name in (
        ("sql", "SqlFrame"),
        ("python", "PythonFrame"),
        ("batch_read", "BatchReadFrame"),
        ("slow_sql", "SlowSqlFrame"),
    )
}
ANALYSIS_TIME_FRAME_TASKS = BATCH_TASKS
STREAM_ANALYSIS_AGGREGATE_BATCH_SIZE = 2_000
