"""The demo's dashboard, served for the ``counts`` task: staff only, with the database's data."""

from __future__ import annotations

import pytest

from stream_analysis.models import AnalysisTask
from stream_analysis.status import task_status
from tests.conftest import at, staff_user
from tests.testapp.models import CountFrame, Item

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.dashboard_urls")]


@pytest.fixture
def staff_client(client):
    client.force_login(staff_user("view_analysistask"))
    return client


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/data.json"])
def test_an_anonymous_user_is_sent_to_the_login(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url", ["/dashboard/", "/dashboard/data.json"])
def test_a_staff_user_without_the_view_permission_is_refused(client, url):
    client.force_login(staff_user())

    response = client.get(url)

    assert response.status_code == 403
    assert b"counts" not in response.content


def test_the_page_loads_nothing_from_elsewhere(staff_client):
    page = staff_client.get("/dashboard/").content.decode()

    assert 'fetch("data.json"' in page
    assert "Item counts" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<script src" not in page and "<link" not in page


def test_the_data_has_the_newest_forty_frames_oldest_first_with_their_counts(staff_client):
    # Given 45 frames: the newest pending, one failed, the others counted
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(15 * i), calculated=True, item_count=i % 7) for i in range(43)
    )
    CountFrame.objects.create(start_time=at(15 * 43), failed=True, attempts=3)
    CountFrame.objects.create(start_time=at(15 * 44))
    Item.objects.create(created_at=at(15 * 45))

    data = staff_client.get("/dashboard/data.json").json()

    frames = data["frames"]
    assert len(frames) == 40
    assert frames[0]["start"] == at(15 * 5).isoformat()
    assert [f["value"] for f in frames[:-2]] == [i % 7 for i in range(5, 43)]
    assert [(f["status"], f["value"]) for f in frames[-2:]] == [
        ("failed", None),
        ("pending", None),
    ]
    counts = next(task for task in data["tasks"] if task["key"] == "counts")
    assert counts == task_status(AnalysisTask.require("counts")).as_json()
    assert counts["lag_seconds"] == 15 * 45 - 15 * 43


def test_an_unknown_task_is_not_found(staff_client, settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {}

    assert staff_client.get("/dashboard/data.json").status_code == 404
