"""A frame's states are defined once (stream_analysis.states); the SQL that repeats
them, the partial index and the admin's filter must agree with that definition."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from stream_analysis import calculation, coordinator, queries, states
from stream_analysis.models import DUE_INDEX_SUFFIX
from tests.conftest import T0
from tests.testapp.models import CountFrame

pytestmark = pytest.mark.django_db


def every_combination() -> list[CountFrame]:
    """One frame for each combination of the columns the states read."""
    now = timezone.now()
    columns = itertools.product(
        (False, True),  # calculated
        (False, True),  # failed
        (0, 2),  # attempts
        (None, now - timedelta(hours=1), now + timedelta(hours=1)),  # next_attempt_at
        (None, now - timedelta(minutes=5)),  # calculated_at
    )
    return CountFrame.objects.bulk_create(
        CountFrame(
            start_time=T0 + index * CountFrame.DURATION,
            calculated=calculated,
            failed=failed,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            calculated_at=calculated_at,
        )
        for index, (calculated, failed, attempts, next_attempt_at, calculated_at) in enumerate(
            columns
        )
    )


def starts(queryset) -> set:
    return set(queryset.values_list("start_time", flat=True))


def test_every_frame_has_exactly_one_status_and_its_filter_finds_it():
    made = every_combination()
    for frame in made:
        matching = [
            s for s, q in states.STATUSES.items() if CountFrame.objects.filter(q, pk=frame.pk)
        ]
        assert matching == [frame.status], frame.__dict__


def test_the_claim_takes_exactly_the_due_frames():
    every_combination()
    with transaction.atomic():
        claimed = calculation.claim_frames(CountFrame, limit=1000)
    assert {f.start_time for f in claimed} == starts(CountFrame.objects.due()) != set()


def test_the_due_count_counts_exactly_the_due_frames():
    every_combination()
    assert coordinator.count_due(CountFrame, 1000) == CountFrame.objects.due().count() > 0


def test_the_next_retry_is_the_earliest_backoff_of_an_unfinished_frame():
    every_combination()
    waiting = CountFrame.objects.unfinished().exclude(states.DUE)
    assert waiting.exists()
    earliest = min(waiting.values_list("next_attempt_at", flat=True))
    assert calculation.next_retry_at(CountFrame) == earliest


def test_the_memory_cutoff_reads_unfinished_and_calculated_frames_as_states_define_them():
    made = every_combination()
    with connection.cursor() as cursor:
        cursor.execute(queries.query("memory_cutoff_bounds", CountFrame))
        oldest_open, newest_done = cursor.fetchone()
    not_calculated = [f.start_time for f in made if not f.calculated]
    assert oldest_open == min(not_calculated)
    assert newest_done == max(starts(CountFrame.objects.calculated()))


def due_index() -> str:
    (index,) = [i for i in CountFrame._meta.indexes if i.name.endswith(DUE_INDEX_SUFFIX)]
    assert index.condition == states.UNFINISHED
    return index.name


@pytest.mark.parametrize("name", ["claim_frames", "count_due"])
def test_the_claim_and_the_due_count_can_use_the_partial_index(name):
    # A partial index serves a query only if its condition follows from the query's
    # WHERE: with sequential scans off and the table's other indexes on start_time
    # dropped (in this transaction only), the plan names it only if the two agree.
    with transaction.atomic(), connection.cursor() as cursor:
        drop_other_indexes(cursor, keep=due_index())
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + queries.query(name, CountFrame), {"limit": 10})
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    assert due_index() in plan, plan


def drop_other_indexes(cursor, keep: str) -> None:
    """Drop CountFrame's indexes but ``keep`` and the primary key (roll back to restore)."""
    table = CountFrame._meta.db_table
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, c.conname FROM pg_index i "
        "LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid "
        "WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
        [table],
    )
    for index, constraint in cursor.fetchall():
        if index == keep:
            continue
        if constraint:
            cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{constraint}"')
        else:
            cursor.execute(f'DROP INDEX "{index}"')
