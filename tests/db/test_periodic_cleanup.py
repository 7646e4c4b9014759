"""The periodic cleanup actor: what it deletes, its lock, and its schedule setting."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.db import connections

from actors import tasks
from stream_analysis.retention import CLEANUP_LOCK
from tests.conftest import at
from tests.testapp.models import CountFrame, FlakyFrame, Item, MinuteFrame

pytestmark = pytest.mark.usefixtures("three_tasks")


@pytest.fixture
def analysed_until_30() -> None:
    """Items at 0, 10, 29, 30, 31 and 100; every task is done with the data before 30."""
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (0, 10, 29, 30, 31, 100))
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(s), calculated=s < 30) for s in (0, 15, 30)
    )
    FlakyFrame.objects.create(start_time=at(30), calculated=True)
    MinuteFrame.objects.create(start_time=at(70))


@pytest.fixture
def another_cleanup_running() -> Iterator[None]:
    """The cleanup lock, held by another database session for the test's duration."""
    other = connections.create_connection("default")
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [CLEANUP_LOCK])
    yield
    other.close()


def deleted_logged(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The counts of the cleanup actor's "cleanup deleted N items" lines."""
    return [
        record.deleted
        for record in caplog.records
        if record.name == "actors.tasks" and getattr(record, "action", None) == "cleanup"
    ]


@pytest.fixture
def caplog_info(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


@pytest.mark.django_db
@pytest.mark.usefixtures("analysed_until_30")
def test_the_cleanup_actor_deletes_what_every_task_is_done_with_and_logs_how_much(caplog_info):
    assert tasks.cleanup_streams.fn() is None
    assert deleted_logged(caplog_info) == [3]
    assert sorted(Item.objects.values_list("created_at", flat=True)) == [at(30), at(31), at(100)]


@pytest.mark.django_db
@pytest.mark.usefixtures("analysed_until_30")
def test_the_cleanup_actor_run_twice_deletes_nothing_more_the_second_time(caplog_info):
    tasks.cleanup_streams.fn()
    tasks.cleanup_streams.fn()

    assert deleted_logged(caplog_info) == [3, 0]
    assert Item.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.usefixtures("analysed_until_30", "another_cleanup_running")
def test_the_cleanup_actor_skips_while_another_cleanup_runs(caplog_info):
    tasks.cleanup_streams.fn()

    assert deleted_logged(caplog_info) == []
    assert "another cleanup is running: skipped" in caplog_info.messages
    assert Item.objects.count() == 6


@pytest.mark.django_db
@pytest.mark.usefixtures("analysed_until_30")
def test_the_cleanup_actor_releases_its_lock(caplog_info):
    tasks.cleanup_streams.fn()
    Item.objects.create(created_at=at(1))
    tasks.cleanup_streams.fn()

    assert deleted_logged(caplog_info) == [3, 1]


def test_the_cleanup_actor_is_scheduled_every_ten_minutes_by_default():
    assert str(tasks.cleanup_streams.options["periodic"]) == "*/10 * * * *"


def test_a_schedule_gives_the_periodic_option(settings):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = "0 3 * * *"

    assert str(tasks.periodic_options("CLEANUP_SCHEDULE")["periodic"]) == "0 3 * * *"


def test_no_schedule_turns_the_periodic_cleanup_off(settings):
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = None

    assert tasks.periodic_options("CLEANUP_SCHEDULE") == {}


@pytest.mark.parametrize("schedule", ["often", "* * * *", 10, "99 * * * *", "0 0 31 2 *"])
def test_a_bad_schedule_schedules_nothing_and_logs_an_error_naming_the_setting(
    settings, schedule, caplog
):
    # Not an error raised at import: that would crash every command (manage.py check
    # reports it as stream_analysis.E018 instead).
    settings.STREAM_ANALYSIS_CLEANUP_SCHEDULE = schedule

    assert tasks.periodic_options("CLEANUP_SCHEDULE") == {}
    (record,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith(f"STREAM_ANALYSIS_CLEANUP_SCHEDULE is {schedule!r}: ")


@pytest.mark.django_db
@pytest.mark.usefixtures("analysed_until_30", "another_cleanup_running")
def test_the_cleanup_command_refuses_while_another_cleanup_runs():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="Another cleanup is running"):
        call_command("cleanup_streams")
    assert Item.objects.count() == 6
