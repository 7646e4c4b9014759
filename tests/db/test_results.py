"""Results of any frame model: the admin's results page, its exports and the plain JSON view."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.http import StreamingHttpResponse

from stream_analysis import results
from tests.conftest import at
from tests.testapp.models import CountFrame, FifteenFrame, MinuteRollup

pytestmark = pytest.mark.django_db
PAGE = "/admin/testapp/countframe/results/"
EXPORT = "/admin/testapp/countframe/results/export."
PLAIN = "/analysis/results/testapp.countframe."
RANGE = {"start": at(0).isoformat(), "end": at(15 * 10).isoformat()}


@pytest.fixture
def frames():
    """Ten 15 s frames from T0: values 0, 10, 20…; frame 3 failed, frame 6 missing, 8 pending."""
    made = []
    for i in range(10):
        if i == 6:
            continue
        state = {"calculated": True, "item_count": 10 * i}
        if i == 3:
            state = {"failed": True, "attempts": 3}
        if i == 8:
            state = {}
        made.append(CountFrame.objects.create(start_time=at(15 * i), **state))
    return made


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("admin", "admin@example.invalid", "pw"))
    return client


def login(client, *, staff: bool, codenames: tuple[str, ...] = ()):
    user = User.objects.create_user("someone", "someone@example.invalid", "pw", is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return client


def body(response) -> str:
    if isinstance(response, StreamingHttpResponse):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_the_results_page_charts_a_field_as_svg_with_gaps_for_failed_missing_and_pending_frames(
    staff_client, frames
):
    page = staff_client.get(PAGE, {**RANGE, "field": "item_count"})

    assert page.status_code == 200
    html = body(page)
    assert 'class="results-chart"' in html
    assert 'src="http' not in html and 'href="http' not in html  # nothing from a CDN
    # The value line breaks at the failed frame (3) and the missing one (6)
    plot = page.context["plot"]
    assert [p.value for p in plot.series.points] == [0, 10, 20, None, 40, 50, None, 70, None, 90]
    assert [band.kind for band in plot.bands] == ["failed", "gap", "gap"]
    assert html.count('class="band band-failed"') == 1 and html.count("band-gap") == 2
    assert len(plot.lines) == 2 and len(plot.dots) == 2  # 0-2 and 4-5 as lines; 7 and 9 alone
    assert "7 of 10 buckets have a value" in html


def test_the_results_page_links_from_the_frame_list(staff_client, frames):
    assert PAGE in body(staff_client.get("/admin/testapp/countframe/"))


def test_a_long_range_is_charted_from_the_rollup_and_in_buckets():
    # 3 hours of 15 s frames (720) and their minutes (180): the minutes fit in 600 points
    FifteenFrame.objects.bulk_create(
        FifteenFrame(start_time=at(15 * i), calculated=True, item_count=1) for i in range(720)
    )
    MinuteRollup.objects.bulk_create(
        MinuteRollup(start_time=at(60 * i), calculated=True, item_count=4) for i in range(180)
    )

    series = results.series(FifteenFrame, "item_count", at(0), at(3 * 3600))
    assert series.frame_class is MinuteRollup and len(series.points) == 180
    assert {p.value for p in series.points} == {4.0}

    # With no level as coarse as asked (the hours are not calculated), the coarsest level with
    # frames is grouped into buckets
    grouped = results.series(FifteenFrame, "item_count", at(0), at(3 * 3600), limit=100)
    assert grouped.frame_class is MinuteRollup
    assert grouped.bucket == timedelta(minutes=2) and len(grouped.points) == 90
    assert {p.value for p in grouped.points} == {4.0}
    # With no rollup frames in the range, the source frames are grouped into buckets
    MinuteRollup.objects.all().delete()
    own = results.series(FifteenFrame, "item_count", at(0), at(3 * 3600), limit=100)
    assert own.frame_class is FifteenFrame and own.bucket == timedelta(minutes=2)
    assert {p.value for p in own.points} == {1.0}


def test_the_csv_and_json_exports_hold_every_frame_of_the_range_streamed(staff_client, frames):
    csv_response = staff_client.get(EXPORT + "csv", RANGE)
    json_response = staff_client.get(EXPORT + "json", RANGE)

    assert isinstance(csv_response, StreamingHttpResponse)
    table = list(csv.DictReader(io.StringIO(body(csv_response))))
    assert [row["item_count"] for row in table] == [
        "0",
        "10",
        "20",
        "0",
        "40",
        "50",
        "70",
        "0",
        "90",
    ]
    assert [row["failed"] for row in table].count("True") == 1
    data = json.loads(body(json_response))
    assert data["model"] == "testapp.countframe" and len(data["frames"]) == 9
    count = data["fields"].index("item_count")
    assert sum(frame[count] for frame in data["frames"]) == 280


def test_the_plain_json_view_serves_staff_with_the_view_permission(client, frames):
    login(client, staff=True, codenames=("view_countframe",))
    response = client.get(PLAIN + "json", RANGE)
    assert response.status_code == 200
    assert len(json.loads(body(response))["frames"]) == 9


@pytest.mark.parametrize(
    ("staff", "codenames"),
    [(False, ("view_countframe",)), (True, ()), (True, ("view_item",))],
    ids=["non-staff with the permission", "staff without it", "staff with another one"],
)
def test_users_without_staff_and_view_permission_get_nothing(client, frames, staff, codenames):
    login(client, staff=staff, codenames=codenames)
    for url in (PLAIN + "json", PLAIN + "csv"):
        response = client.get(url, RANGE)
        assert response.status_code == 403 and "item_count" not in body(response)
    for url in (PAGE, EXPORT + "csv", EXPORT + "json"):
        response = client.get(url, RANGE)
        assert response.status_code in (302, 403) and "item_count" not in body(response)


def test_anonymous_users_get_nothing(client, frames):
    for url in (PLAIN + "json", PLAIN + "csv"):
        assert client.get(url, RANGE).status_code == 403
    for url in (PAGE, EXPORT + "csv", EXPORT + "json"):
        response = client.get(url, RANGE)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_model_that_is_no_configured_frame_model_is_not_served(staff_client):
    assert staff_client.get("/analysis/results/auth.user.json").status_code == 403


def test_a_bad_range_gets_an_error_naming_the_format(staff_client, frames):
    response = staff_client.get(PLAIN + "json", {"start": "yesterday"})
    assert response.status_code == 400
    assert "ISO 8601" in response.json()["error"]
    page = staff_client.get(PAGE, {"start": "2026-01-02", "end": "2026-01-01"})
    assert "must be before end" in body(page)
