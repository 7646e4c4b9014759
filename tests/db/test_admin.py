"""The admin lists tasks and frames to staff, acts with the right permission, and
shows nothing to anyone else."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.utils import formats, timezone

from stream_analysis.models import AnalysisTask
from stream_analysis.states import STATUSES as FRAME_STATUSES
from stream_analysis.status import task_status
from tests.conftest import at, wait_until
from tests.testapp.models import CountFrame, Item

pytestmark = pytest.mark.django_db

TASKS = "/admin/stream_analysis/analysistask/"
FRAMES = "/admin/testapp/countframe/"


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.invalid", "pw")
    client.force_login(user)
    return client


def login_staff(client, *codenames: str):
    """A staff user (not a superuser) with exactly these permissions."""
    user = User.objects.create_user("staff", "staff@example.invalid", "pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client):
    return login_staff(client, "view_analysistask", "view_countframe")


@pytest.fixture
def operator_client(client):
    return login_staff(client, "change_analysistask", "change_countframe")


def row_cells(body: str, name: str) -> dict[str, str]:
    """The changelist row showing ``name``: column name -> cell HTML."""
    rows = re.findall(r"<tr>.*?</tr>", body, re.S)
    row = next(row for row in rows if f">{name}<" in row)
    return dict(re.findall(r'class="field-(\w+)[^"]*">(.*?)</t[dh]>', row, re.S))


def shown(value) -> str:
    """A datetime as the admin's lists render it."""
    return formats.localize(timezone.template_localtime(value))


def task_pk(key: str) -> int:
    return AnalysisTask.require(key).pk


def run_action(client, url: str, action: str, *pks: int, **fields: str):
    data = {"action": action, "_selected_action": [str(pk) for pk in pks], **fields}
    return client.post(url, data)


def recompute(client, *pks: int, **fields: str):
    """The recompute action, confirmed (the admin asks first)."""
    return run_action(client, FRAMES, "recompute_frames", *pks, confirm="yes", **fields)


def make_frames(*rows: dict) -> list[CountFrame]:
    """One CountFrame per dict, 15 s apart from T0."""
    return [CountFrame.objects.create(start_time=at(15 * i), **row) for i, row in enumerate(rows)]


def due(frame: CountFrame) -> bool:
    frame.refresh_from_db()
    return not frame.calculated and not frame.failed and frame.attempts == 0


# -- the task list ---------------------------------------------------------------------


def test_staff_see_every_configured_task(staff_client):
    page = staff_client.get(TASKS)

    assert page.status_code == 200
    for name in ("Item counts", "Flaky counts", "Minute counts"):
        assert name in page.content.decode()


def test_the_task_list_shows_each_tasks_numbers_as_the_database_has_them(staff_client):
    # Given two calculated frames, a failed one, a pending one and a stream up to 100 s
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 100))
    make_frames(
        {"calculated": True, "analysis_time": 0.5, "cleanup_time": 0.125},
        {"calculated": True, "analysis_time": 1.5, "cleanup_time": 0.375},
        {"failed": True, "attempts": 3},
        {},
    )

    cells = row_cells(staff_client.get(TASKS).content.decode(), "Item counts")

    frames = CountFrame.objects
    assert cells["done"] == str(frames.filter(calculated=True).count()) == "2"
    assert cells["pending"] == str(frames.filter(calculated=False, failed=False).count()) == "1"
    assert cells["failed"] == str(frames.filter(failed=True).count()) == "1"
    newest_end = frames.filter(calculated=True).latest().end_time
    assert cells["newest_calculated_end"] == shown(newest_end)
    latest_item = Item.objects.latest("created_at").created_at
    assert cells["lag"] == f"{(latest_item - newest_end).total_seconds():.1f}" == "70.0"
    assert cells["avg_analysis_time"] == "1.000"
    assert cells["avg_cleanup_time"] == "0.250"
    assert cells["cutoff"] == shown(task_status(AnalysisTask.require("counts")).cutoff)
    assert cells["duration"] == "0:00:15"
    assert 'alt="True"' in cells["is_running"]


def test_a_stopped_task_shows_as_stopped(staff_client):
    AnalysisTask.require("counts").cancel()

    cells = row_cells(staff_client.get(TASKS).content.decode(), "Item counts")

    assert 'alt="False"' in cells["is_running"]


# -- anonymous users and missing permissions -------------------------------------------


def anonymous_urls() -> list[tuple[str, str]]:
    return [
        ("get", TASKS),
        ("get", TASKS + "{task}/change/"),
        ("post", TASKS + "{task}/start/"),
        ("post", TASKS + "{task}/stop/"),
        ("get", FRAMES),
        ("get", FRAMES + "{frame}/change/"),
        ("post", FRAMES),
    ]


@pytest.mark.parametrize(("method", "url"), anonymous_urls())
def test_an_anonymous_user_gets_no_admin_data(client, method, url):
    frame = CountFrame.objects.create(start_time=at(0), failed=True, last_error="secret")
    AnalysisTask.require("counts").cancel()
    data = {"action": "recompute_frames", "_selected_action": [str(frame.pk)]}

    page = getattr(client, method)(
        url.format(task=task_pk("counts"), frame=frame.pk), data if method == "post" else None
    )

    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")
    assert b"secret" not in page.content
    assert AnalysisTask.require("counts").is_running is False
    assert CountFrame.objects.get().failed is True


def test_staff_without_the_change_permission_cannot_start_or_stop_a_task(viewer_client):
    AnalysisTask.require("counts").cancel()
    pk = task_pk("counts")

    assert viewer_client.post(f"{TASKS}{pk}/start/").status_code == 403
    run_action(viewer_client, TASKS, "start_tasks", pk)

    assert AnalysisTask.require("counts").is_running is False
    assert b"start_tasks" not in viewer_client.get(TASKS).content
    assert b'name="_start"' not in viewer_client.get(f"{TASKS}{pk}/change/").content


def test_staff_without_the_change_permission_cannot_stop_a_task(viewer_client):
    assert viewer_client.post(f"{TASKS}{task_pk('counts')}/stop/").status_code == 403
    assert AnalysisTask.require("counts").is_running is True


def test_staff_without_the_change_permission_cannot_run_frame_actions(viewer_client, ticks):
    failed, done = make_frames({"failed": True, "attempts": 3}, {"calculated": True})

    page = viewer_client.get(FRAMES)
    run_action(viewer_client, FRAMES, "retry_failed_frames", failed.pk)
    run_action(viewer_client, FRAMES, "recompute_frames", done.pk)

    assert page.status_code == 200
    assert b"retry_failed_frames" not in page.content
    assert b"recompute_frames" not in page.content
    assert not due(failed) and not due(done)
    assert ticks == []


def test_staff_with_the_change_permission_start_and_stop_a_task(operator_client, ticks):
    pk = task_pk("counts")

    stopped = operator_client.post(f"{TASKS}{pk}/stop/")
    assert AnalysisTask.require("counts").is_running is False
    started = operator_client.post(f"{TASKS}{pk}/start/")

    assert AnalysisTask.require("counts").is_running is True
    assert stopped.status_code == started.status_code == 302
    assert started["Location"] == f"{TASKS}{pk}/change/"
    assert ticks == ["counts"]  # start ticks the task at once


def test_start_and_stop_are_post_only(operator_client):
    assert operator_client.get(f"{TASKS}{task_pk('counts')}/stop/").status_code == 405
    assert AnalysisTask.require("counts").is_running is True


def test_the_start_and_stop_actions_act_on_the_selected_tasks(operator_client):
    counts, flaky = task_pk("counts"), task_pk("flaky")

    run_action(operator_client, TASKS, "stop_tasks", counts, flaky)
    assert not AnalysisTask.require("counts").is_running
    assert not AnalysisTask.require("flaky").is_running
    run_action(operator_client, TASKS, "start_tasks", flaky)

    assert not AnalysisTask.require("counts").is_running
    assert AnalysisTask.require("flaky").is_running


# -- the task page and its chart -------------------------------------------------------


def test_the_task_page_shows_the_status_and_start_stop_buttons(operator_client):
    make_frames({"calculated": True}, {"failed": True})

    page = operator_client.get(f"{TASKS}{task_pk('counts')}/change/")

    body = page.content.decode()
    assert page.status_code == 200
    assert 'name="_start"' in body and 'name="_stop"' in body
    assert f'formaction="{TASKS}{task_pk("counts")}/start/"' in body
    assert re.search(
        r'class="failed"><a href="/admin/testapp/countframe/\?status=failed">1<', body
    )


def test_the_chart_has_a_bar_per_status_present_in_each_bucket(staff_client):
    # Given 15 s frames (1-minute buckets): minute 0 has 2 done and 1 failed frame,
    # minute 1 has none, minute 2 has 1 pending frame.
    for seconds, state in [(0, "done"), (15, "done"), (30, "failed"), (120, "pending")]:
        CountFrame.objects.create(
            start_time=at(seconds), calculated=state == "done", failed=state == "failed"
        )

    body = staff_client.get(f"{TASKS}{task_pk('counts')}/change/").content.decode()

    svg = re.search(r'<svg [^>]*class="frame-chart".*?</svg>', body, re.S)
    assert svg is not None
    bars = re.findall(r'<rect class="bar (\w+)"[^>]*><title>([^<]*)</title>', svg.group(0))
    assert "Frames per 1 minute of start time" in body
    assert bars == [
        ("done", "2026-01-01 00:00:00: 2 done"),
        ("failed", "2026-01-01 00:00:00: 1 failed"),
        ("pending", "2026-01-01 00:02:00: 1 pending"),
    ]
    assert "<script" not in svg.group(0) and "href" not in svg.group(0)  # nothing fetched


def test_a_task_without_frames_has_no_chart_yet(staff_client):
    body = staff_client.get(f"{TASKS}{task_pk('minutely')}/change/").content.decode()

    assert "No frames yet." in body
    assert 'class="frame-chart"' not in body


# -- the frame list --------------------------------------------------------------------


def test_staff_see_frames_with_their_status(staff_client):
    make_frames({"calculated": True, "item_count": 7}, {"failed": True, "attempts": 3})

    page = staff_client.get(FRAMES)

    assert page.status_code == 200
    body = page.content.decode()
    assert "calculated" in body and "failed" in body


def one_frame_per_status() -> dict[str, CountFrame]:
    rows = {
        "pending": {},
        "retrying": {"attempts": 1, "next_attempt_at": at(3600)},
        "stale": {"calculated_at": at(60), "attempts": 0},
        "calculated": {"calculated": True, "calculated_at": at(60), "attempts": 1},
        "failed": {"failed": True, "attempts": 3},
    }
    made = make_frames(*rows.values())
    return dict(zip(rows, made, strict=True))


@pytest.mark.parametrize("status", list(FRAME_STATUSES))
def test_the_status_filter_lists_the_frames_with_that_status(staff_client, status):
    frames = one_frame_per_status()
    assert {name: frame.status for name, frame in frames.items()} == {n: n for n in frames}

    page = staff_client.get(FRAMES, {"status": status})

    listed = list(page.context["cl"].result_list)
    assert listed == [frames[status]]


def test_the_status_filter_counts_frames_when_asked(staff_client):
    one_frame_per_status()

    page = staff_client.get(FRAMES, {"_facets": "True"})

    assert page.status_code == 200
    assert "failed (no retry left) (1)" in page.content.decode()


def test_the_last_traceback_shows_on_the_frame_page(staff_client):
    error = 'Traceback (most recent call last):\n  File "x.py"\nValueError: <bad> & "odd"'
    frame = CountFrame.objects.create(start_time=at(0), failed=True, last_error=error)

    body = staff_client.get(f"{FRAMES}{frame.pk}/change/").content.decode()

    assert "<pre" in body
    assert (
        "Traceback (most recent call last):\n  File &quot;x.py&quot;\n"
        "ValueError: &lt;bad&gt; &amp; &quot;odd&quot;</pre>"
    ) in body


def test_retry_failed_frames_resets_the_selected_failed_frames_only(operator_client, ticks):
    # Given two failed frames (one selected), a calculated and a retrying one (selected)
    failed, other_failed, done, retrying = make_frames(
        {"failed": True, "attempts": 3, "last_error": "boom"},
        {"failed": True, "attempts": 3},
        {"calculated": True, "attempts": 1},
        {"attempts": 1, "next_attempt_at": at(3600)},
    )

    run_action(operator_client, FRAMES, "retry_failed_frames", failed.pk, done.pk, retrying.pk)

    failed.refresh_from_db()
    assert (failed.status, failed.attempts, failed.last_error) == ("pending", 0, "")
    for frame, status in [(other_failed, "failed"), (done, "calculated"), (retrying, "retrying")]:
        frame.refresh_from_db()
        assert frame.status == status
    assert ticks == ["counts"]


def test_recompute_puts_the_selected_frames_back_to_pending_whatever_their_status(
    operator_client, ticks
):
    Item.objects.create(created_at=at(0))  # the stream still holds the frames' data
    failed, done, untouched = make_frames(
        {"failed": True, "attempts": 3},
        {"calculated": True, "attempts": 1, "item_count": 4},
        {"calculated": True, "attempts": 1},
    )

    page = recompute(operator_client, failed.pk, done.pk)

    assert page.status_code == 302
    assert due(failed) and due(done)
    assert done.item_count == 4  # results stay until it is calculated again
    untouched.refresh_from_db()
    assert untouched.calculated
    assert ticks == ["counts"]


def test_a_frame_action_on_a_stopped_task_says_the_task_must_be_started(operator_client):
    AnalysisTask.require("counts").cancel()
    Item.objects.create(created_at=at(0))
    (frame,) = make_frames({"calculated": True})

    page = recompute(operator_client, frame.pk)

    notes = [str(message) for message in get_messages(page.wsgi_request)]
    assert notes[0] == "1 frame put back to pending, to be recomputed."
    assert "start its task" in notes[1]


def page_text(page) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page.content.decode()).split())


def test_recompute_asks_first_with_the_number_of_frames_and_changes_nothing(operator_client):
    Item.objects.create(created_at=at(0))
    done, pending = make_frames({"calculated": True, "item_count": 4}, {})

    page = run_action(operator_client, FRAMES, "recompute_frames", done.pk, pending.pk)

    assert page.status_code == 200
    assert (
        "Recompute 2 frames? 1 of them is calculated: its results will be replaced by a new "
        "calculation." in page_text(page)
    )
    assert 'name="confirm" value="yes"' in page.content.decode()
    done.refresh_from_db()
    assert done.calculated and done.item_count == 4


def test_recompute_of_every_frame_across_pages_counts_them_all_before_acting(operator_client):
    Item.objects.create(created_at=at(0))
    first, *_ = make_frames(*[{"calculated": True}] * 3)

    asked = run_action(operator_client, FRAMES, "recompute_frames", first.pk, select_across="1")
    done = recompute(operator_client, first.pk, select_across="1")

    assert "Recompute 3 frames?" in page_text(asked)
    assert 'name="select_across" value="1"' in asked.content.decode()
    assert done.status_code == 302
    assert CountFrame.objects.filter(calculated=True).count() == 0


def test_recompute_refuses_frames_whose_data_was_cleaned_up_unless_told(operator_client):
    # Given three calculated frames, and the stream's items before 30 cleaned up
    Item.objects.create(created_at=at(31))
    frames = make_frames(*[{"calculated": True, "item_count": 7}] * 3)
    pks = [frame.pk for frame in frames]

    asked = run_action(operator_client, FRAMES, "recompute_frames", *pks)
    refused = recompute(operator_client, *pks)

    assert "2 of them start before" in page_text(asked)
    assert 'name="allow_missing_data"' in asked.content.decode()
    notes = [str(message) for message in get_messages(refused.wsgi_request)]
    assert notes[0].startswith("Nothing recomputed. 2 of these CountFrame frames start before")
    assert CountFrame.objects.filter(calculated=True, item_count=7).count() == 3
    # When the operator ticks the box, they are recomputed and marked missing_data
    recompute(operator_client, *pks, allow_missing_data="yes")

    marked = CountFrame.objects.filter(calculated=False, missing_data=True)
    assert sorted(marked.values_list("start_time", flat=True)) == [at(0), at(15)]
    assert CountFrame.objects.get(start_time=at(30)).missing_data is False


@pytest.mark.parametrize(
    "query",
    ["start_time__year=9999", "start_time__year=9999&start_time__month=12",
     "start_time__year=9999&start_time__month=12&start_time__day=31"],
)  # fmt: skip
def test_a_date_at_the_end_of_the_calendar_in_the_frame_list_is_a_bad_lookup(staff_client, query):
    response = staff_client.get(f"{FRAMES}?{query}")

    assert response.status_code == 302
    assert response["Location"] == f"{FRAMES}?e=1"


# -- actions while a worker holds the frame ---------------------------------------------


def blocked_by_me() -> int:
    """How many other sessions wait for a lock this session holds (fresh statistics)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
        return cursor.fetchone()[0]


def hold_frame(frame_pk: int, then: Callable[[], None], errors: list[BaseException]):
    """A worker-like thread: lock the frame, wait until someone waits for it, run ``then``."""
    locked = threading.Event()

    def run() -> None:
        try:
            with transaction.atomic():
                CountFrame.objects.select_for_update().get(pk=frame_pk)
                locked.set()
                wait_until(blocked_by_me, 30, "the admin's UPDATE to wait for the frame's lock")
                then()
        except BaseException as exc:
            errors.append(exc)
        finally:
            locked.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    locked.wait(30)
    return thread


def test_recompute_of_a_frame_being_calculated_waits_and_then_applies(live_db, operator_client):
    # Given a worker calculating a pending frame: it holds the row lock
    Item.objects.create(created_at=at(0))
    (frame,) = make_frames({})
    errors: list[BaseException] = []

    def worker_stores_the_result() -> None:
        CountFrame.objects.filter(pk=frame.pk).update(
            calculated=True, attempts=1, calculated_at=timezone.now(), item_count=9
        )

    worker = hold_frame(frame.pk, worker_stores_the_result, errors)

    # When an operator recomputes it (the request waits for the worker's commit)
    page = recompute(operator_client, frame.pk)
    worker.join(30)

    # Then the worker's result committed and the frame is due again, not lost
    assert errors == []
    assert page.status_code == 302
    frame.refresh_from_db()
    assert (frame.calculated, frame.failed, frame.attempts) == (False, False, 0)
    assert frame.status == "stale"  # calculated once: its results stay until recomputed
    assert frame.item_count == 9 and frame.calculated_at is not None


def test_editing_a_frame_keeps_what_a_worker_stored_meanwhile(live_db, staff_client):
    (frame,) = make_frames({})
    errors: list[BaseException] = []

    def worker_stores_the_result() -> None:
        CountFrame.objects.filter(pk=frame.pk).update(calculated=True, attempts=1)

    worker = hold_frame(frame.pk, worker_stores_the_result, errors)
    page = staff_client.post(f"{FRAMES}{frame.pk}/change/", {"item_count": 5})
    worker.join(30)

    assert errors == []
    assert page.status_code == 302
    frame.refresh_from_db()
    assert (frame.item_count, frame.calculated, frame.attempts) == (5, True, 1)
