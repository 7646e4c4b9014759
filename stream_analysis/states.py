"""A frame's states, each defined once, as a condition on the frame's columns.

Every filter of frames by state goes through these: ``FrameQuerySet``'s methods,
the partial index that finds unfinished frames, the admin's status filter,
``status`` and the metrics. The SQL in ``sql/queries.sql`` that must repeat a
predicate (the claim, the due count, the next retry) is tested against them
(``tests/db/test_states.py``), so the index condition and the claim cannot drift
apart unnoticed.

A frame is, by its columns:

========== ==================================================================
pending    not calculated, not failed, never tried (attempts = 0)
retrying   a calculate() failed, attempts remain (waits for next_attempt_at)
stale      was calculated, then put back (late items, recompute): to redo
calculated done: its results are stored
failed     every attempt failed; kept with its traceback until retried
========== ==================================================================

Two groupings are used by the machinery: *unfinished* (pending, retrying or
stale: what a worker still has to do) and *due* (unfinished and not waiting for
a retry's backoff: what a worker may claim now).
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

#: Pending, retrying or stale: a worker still has to calculate it.
UNFINISHED = Q(calculated=False, failed=False)
#: Unfinished and not waiting for a retry's backoff: a worker may claim it now.
DUE = UNFINISHED & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=Now()))
PENDING = UNFINISHED & Q(calculated_at__isnull=True, attempts=0)
RETRYING = UNFINISHED & Q(calculated_at__isnull=True, attempts__gt=0)
STALE = UNFINISHED & Q(calculated_at__isnull=False)
CALCULATED = Q(calculated=True)
FAILED = Q(calculated=False, failed=True)
#: Not calculated, failed included: what holds back a rollup over these frames.
NOT_CALCULATED = Q(calculated=False)
#: Put back to be calculated again at least once (late items, recompute, retry).
RECOMPUTED = Q(recomputes__gt=0)

#: Each value of ``BaseTimeFrame.status`` and its condition.
STATUSES: dict[str, Q] = {
    "pending": PENDING,
    "retrying": RETRYING,
    "stale": STALE,
    "calculated": CALCULATED,
    "failed": FAILED,
}


def status_of(frame: Any) -> str:
    """``frame``'s status (a key of :data:`STATUSES`), from its loaded fields."""
    if frame.calculated:
        return "calculated"
    if frame.failed:
        return "failed"
    if frame.calculated_at is not None:
        return "stale"
    return "retrying" if frame.attempts else "pending"


class FrameQuerySet(models.QuerySet[Any]):
    """Frames by state: ``MyFrame.objects.due()``, ``.failed()``, ``.unfinished()``…"""

    def unfinished(self) -> FrameQuerySet:
        return self.filter(UNFINISHED)

    def due(self) -> FrameQuerySet:
        return self.filter(DUE)

    def pending(self) -> FrameQuerySet:
        return self.filter(PENDING)

    def retrying(self) -> FrameQuerySet:
        return self.filter(RETRYING)

    def stale(self) -> FrameQuerySet:
        return self.filter(STALE)

    def calculated(self) -> FrameQuerySet:
        return self.filter(CALCULATED)

    def failed(self) -> FrameQuerySet:
        return self.filter(FAILED)

    def with_status(self, status: str) -> FrameQuerySet:
        """Frames whose ``status`` is ``status`` (a key of :data:`STATUSES`)."""
        return self.filter(STATUSES[status])


#: The frame models' default manager: ``MyFrame.objects`` has FrameQuerySet's methods.
FrameManager = models.Manager.from_queryset(FrameQuerySet)
