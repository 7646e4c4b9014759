"""The admin lists tasks and frames to staff, and nothing to anyone else."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from tests.conftest import at
from tests.testapp.models import CountFrame

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = User.objects.create_superuser("admin", "admin@example.invalid", "pw")
    client.force_login(user)
    return client


def test_staff_see_frames_with_their_status(staff_client):
    CountFrame.objects.create(start_time=at(0), calculated=True, item_count=7)
    CountFrame.objects.create(start_time=at(15), failed=True, attempts=3)

    page = staff_client.get("/admin/testapp/countframe/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "calculated" in body and "failed" in body


def test_staff_see_every_configured_task(staff_client):
    page = staff_client.get("/admin/stream_analysis/analysistask/")

    assert page.status_code == 200
    for name in ("Item counts", "Flaky counts", "Minute counts"):
        assert name in page.content.decode()


@pytest.mark.parametrize(
    "url", ["/admin/testapp/countframe/", "/admin/stream_analysis/analysistask/"]
)
def test_an_anonymous_user_gets_no_admin_data(client, url):
    CountFrame.objects.create(start_time=at(0), calculated=True, item_count=7)

    page = client.get(url)

    assert page.status_code == 302
    assert page["Location"].startswith("/admin/login/")
