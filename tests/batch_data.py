"""Random readings with the truth computed in Python, for the batch-path tests and faults."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from stream_analysis import coordinator, grid
from tests.testapp.models import READING_AGGREGATES, Reading

FIELDS = tuple(READING_AGGREGATES)


def random_readings(
    seed: int,
    *,
    first: datetime,
    frames: int,
    duration: timedelta,
    offset: timedelta = timedelta(0),
) -> list[Reading]:
    """Readings over ``frames`` frames from the frame holding ``first``: irregular times
    (microseconds), every frame edge hit exactly now and then, runs of empty frames,
    negative values and a few tags."""
    rng = random.Random(seed)
    start = grid.frame_start(first, duration, offset)
    readings = []
    for index in range(frames):
        frame = start + index * duration
        if rng.random() < 0.25:
            continue  # an empty frame
        count = rng.choice([1, 1, 2, 3, 5, 8])
        for _ in range(count):
            if rng.random() < 0.2:
                at = frame  # exactly on the edge: belongs to this frame, not the one before
            else:
                micro = rng.randrange(int(duration / timedelta(microseconds=1)))
                at = frame + timedelta(microseconds=micro)
            readings.append(
                Reading(
                    taken_at=at,
                    value=rng.randint(-50, 100),
                    tag=rng.choice(["", "", "x", "keep"]),
                )
            )
    return readings


def truth(
    readings: list[Reading], duration: timedelta, offset: timedelta = timedelta(0)
) -> dict[datetime, dict[str, Any]]:
    """Per frame start, what READING_AGGREGATES give (only frames with readings)."""
    grouped: dict[datetime, list[Reading]] = defaultdict(list)
    for reading in readings:
        grouped[grid.frame_start(reading.taken_at, duration, offset)].append(reading)
    return {start: expected(rows) for start, rows in grouped.items()}


def expected(rows: list[Reading]) -> dict[str, Any]:
    """What READING_AGGREGATES give for ``rows`` (an empty list: SQL's empty group)."""
    values = [row.value for row in rows]
    return {
        "reading_count": len(values),
        "total": sum(values) if values else None,
        "average": sum(values) / len(values) if values else None,
        "lowest": min(values, default=None),
        "tagged": sum(1 for row in rows if row.tag == "x"),
        "total_or_zero": sum(values),
    }


def results(frame_class: Any) -> dict[datetime, dict[str, Any]]:
    """The stored results of every frame, by start."""
    return {
        row["start_time"]: {field: row[field] for field in FIELDS}
        for row in frame_class.objects.values("start_time", *FIELDS)
    }


def create_frames(frame_class: Any, first: datetime, count: int) -> grid.FrameRange:
    """``count`` pending frames from the frame holding ``first``, by the bulk insert."""
    duration = frame_class.DURATION
    start = grid.frame_start(first, duration, frame_class.OFFSET)
    planned = grid.FrameRange(start, start + (count - 1) * duration, duration)
    coordinator.insert_frames(frame_class, planned)
    return planned
