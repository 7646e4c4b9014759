"""The app's settings, read from Django's settings each time they are used.

Nothing here is read at import time, so ``override_settings`` works and an
import of this module never needs configured settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    # Frames claimed and committed together; each runs in its own savepoint.
    "BATCH_SIZE": 20,
    # Frames of an AGGREGATES class filled by one statement (at most 100,000,
    # so that one statement's work and memory stay small).
    "AGGREGATE_BATCH_SIZE": 5_000,
    # Frames claimed together by BATCH_READ frames (one stream read per run of them).
    "BATCH_READ_BATCH_SIZE": 500,
    # BATCH_READ frames: stream rows held in memory at once per batch.
    "BATCH_READ_MAX_ROWS": 100_000,
    # Seconds one calculate message may keep claiming frames before it hands
    # over to a fresh message (keeps periodic ticks from starving).
    "TIME_BUDGET": 10.0,
    # Seconds a single frame's calculate() may run before it is interrupted.
    "FRAME_TIME_LIMIT": 300.0,
    # How many times calculate() is tried before a frame is marked failed.
    "MAX_ATTEMPTS": 3,
    # Backoff before attempt n+1 is RETRY_BACKOFF * 2**(n-1) seconds, capped.
    "RETRY_BACKOFF": 5.0,
    "RETRY_BACKOFF_MAX": 600.0,
    # Calculate messages kept queued per task while frames are pending.
    "CONCURRENCY": 4,
    # Seconds an item's arrival stamp may precede its commit (RECOMPUTE_LATE):
    # arrivals are read this far behind the wall clock, and a frame calculated
    # less than this before an item arrived is recomputed too.
    "ARRIVAL_SETTLE": 2.0,
    # Dramatiq queue of this app's actors.
    "QUEUE": "stream_analysis",
    # Frames one coordinator tick may create; the rest are created by the ticks
    # that follow at once, so a tick stays short however far behind a task is.
    "MAX_FRAMES_PER_TICK": 100_000,
    # Seconds the stream's latest time may run ahead of the wall clock. An item
    # further ahead (a wrong clock, a typo) is reported once and not followed:
    # frames close up to the latest item within it. None: no limit.
    "FUTURE_TOLERANCE": 3600.0,
    # The metrics view: False serves staff users only (and METRICS_TOKEN holders);
    # True serves anyone who reaches it, so restrict it by network.
    "METRICS_PUBLIC": False,
    # A bearer token for scrapers ("Authorization: Bearer <token>"); empty: none.
    "METRICS_TOKEN": "",
    # Seconds back from now over which calculate durations are binned.
    "METRICS_WINDOW": 600.0,
    # When the periodic actor deletes analysed stream data (a cron schedule of
    # minute resolution, read when the actors are declared); None turns it off.
    "CLEANUP_SCHEDULE": "*/10 * * * *",
}


@dataclass(frozen=True)
class TaskSettings:
    """One entry of ``ANALYSIS_TIME_FRAME_TASKS``, as written by the user."""

    key: str
    name: str
    frame_class_path: str
    autostart: bool


class AppSettings:
    """Attribute access to ``STREAM_ANALYSIS_<NAME>`` with the defaults above."""

    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(django_settings, f"STREAM_ANALYSIS_{name}", DEFAULTS[name])

    @property
    def raw_tasks(self) -> Any:
        """``ANALYSIS_TIME_FRAME_TASKS`` exactly as configured (unchecked)."""
        return getattr(django_settings, "ANALYSIS_TIME_FRAME_TASKS", {})

    def tasks(self) -> dict[str, TaskSettings]:
        """The configured tasks; entries that ``manage.py check`` rejects are skipped."""
        raw = self.raw_tasks
        if not isinstance(raw, dict):
            return {}
        found = {}
        for key, entry in raw.items():
            if not isinstance(entry, dict) or "frame_class_path" not in entry:
                continue
            found[key] = TaskSettings(
                key=key,
                name=str(entry.get("name", key)),
                frame_class_path=str(entry["frame_class_path"]),
                autostart=entry.get("autostart", False) is True,
            )
        return found


app_settings = AppSettings()
