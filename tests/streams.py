"""Hand-built streams with known answers, and the check that real workers calculated
each frame of one exactly once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from django.db.models import Count

from tests.conftest import at
from tests.testapp.models import CalculationLog, CountFrame, Item


def write_stream(
    frames: int, duration: float = 15.0, closing_item: bool = True
) -> Counter[datetime]:
    """Items for ``frames`` frames of ``duration`` seconds from T0: frame i gets (3i + 1) % 7
    items (some get none), the first exactly on its start (a boundary). Returns the true
    count per frame start.

    With ``closing_item``, one more item at the end of the last frame closes it.
    """
    expected: Counter[datetime] = Counter()
    items = []
    for i in range(frames):
        start = at(i * duration)
        expected[start] = 0
        for k in range((3 * i + 1) % 7):
            offset = 0.0 if k == 0 else duration * k / 7
            items.append(Item(created_at=start + timedelta(seconds=offset)))
            expected[start] += 1
    if closing_item:
        items.append(Item(created_at=at(frames * duration)))
    Item.objects.bulk_create(items)
    return expected


def calculated() -> int:
    """How many CountFrames are calculated."""
    return CountFrame.objects.filter(calculated=True).count()


def calculations_per_frame() -> dict:
    """How many times each CountFrame was calculated, by its start (CalculationLog)."""
    runs = CalculationLog.objects.filter(frame_model="CountFrame")
    rows = runs.values_list("start_time").annotate(n=Count("id"))
    return dict(rows)


def assert_every_frame_exactly_once(expected) -> None:
    """Every frame of ``expected`` (write_stream's answer) exists, holds its true count,
    and was calculated once: no gap, no duplicate."""
    frames = {f.start_time: f for f in CountFrame.objects.all()}
    assert sorted(frames) == sorted(expected), "frames missing or extra (gaps or duplicates)"
    assert {s: f.item_count for s, f in frames.items()} == dict(expected)
    assert calculations_per_frame() == dict.fromkeys(expected, 1)
