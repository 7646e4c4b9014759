"""Hand-built streams with known answers."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from tests.conftest import at
from tests.testapp.models import Item


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
