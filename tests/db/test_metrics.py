"""The Prometheus metrics: scraped from the view, parsed, and compared with the database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.views.debug import ExceptionReporter
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

import stream_analysis
from stream_analysis.contrib import prometheus
from stream_analysis.contrib.prometheus import DURATION_BUCKETS, StreamAnalysisCollector
from stream_analysis.models import AnalysisTask, CleanupTotal
from stream_analysis.status import task_status
from tests.conftest import at, staff_user
from tests.testapp.models import CountFrame, FlakyFrame, Item, MinuteFrame

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(staff_user("view_analysistask"))
    return client


def scrape(client, **headers) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """GET /metrics and parse it: {sample name: {sorted labels: value}}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


# -- who may read them ---------------------------------------------------------------


def test_an_anonymous_request_is_refused_by_default(client):
    response = client.get("/metrics")

    assert response.status_code == 403
    assert b"stream_analysis_frames" not in response.content


def test_a_logged_in_user_who_is_not_staff_is_refused(client):
    client.force_login(User.objects.create_user("someone", password="pw"))

    assert client.get("/metrics").status_code == 403


def test_a_scraper_with_the_bearer_token_may_read_them(client, settings):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = "s3cret-token"

    def status(authorization: str) -> int:
        return client.get("/metrics", headers={"Authorization": authorization}).status_code

    assert status("Bearer s3cret-token") == 200
    assert status("Bearer wrong") == 403
    assert status("Basic s3cret-token") == 403


def test_an_empty_token_lets_nobody_in(client, settings):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = ""

    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


def test_public_metrics_need_no_login(client, settings):
    settings.STREAM_ANALYSIS_METRICS_PUBLIC = True

    assert client.get("/metrics").status_code == 200


def test_a_staff_user_without_the_view_permission_is_refused(client):
    client.force_login(staff_user())

    response = client.get("/metrics")

    assert response.status_code == 403
    assert b"stream_analysis.view_analysistask" in response.content


@pytest.mark.parametrize("value", ["False", "0", 1])
def test_metrics_public_that_is_not_true_itself_keeps_them_private(client, settings, value):
    settings.STREAM_ANALYSIS_METRICS_PUBLIC = value

    assert client.get("/metrics").status_code == 403


def test_a_token_of_another_type_lets_nobody_in(client, settings):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = 12345

    assert client.get("/metrics", headers={"Authorization": "Bearer 12345"}).status_code == 403


@pytest.fixture
def debug_client(settings) -> Client:
    """A client that gets the debug page for an error, as a browser would with DEBUG on."""
    settings.DEBUG = True
    return Client(raise_request_exception=False)


def test_a_non_ascii_token_is_refused_not_an_error_that_shows_the_real_token(
    debug_client, settings
):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = "s3cret-token"

    response = debug_client.get("/metrics", headers={"Authorization": "Bearer wrong-é"})

    assert response.status_code == 403
    assert b"s3cret-token" not in response.content


def test_a_non_ascii_token_is_compared_as_it_is(client, settings):
    settings.STREAM_ANALYSIS_METRICS_TOKEN = "sécret-tøken"

    def status(authorization: str) -> int:
        return client.get("/metrics", headers={"Authorization": authorization}).status_code

    assert status("Bearer sécret-tøken") == 200
    assert status("Bearer secret-token") == 403


@pytest.mark.parametrize("debug", [True, False], ids=["debug page", "error report"])
def test_an_error_while_checking_the_token_shows_no_token(
    client, settings, monkeypatch, caplog, debug
):
    # Given a comparison that fails (a C function: the failure adds no frame of its own)
    settings.STREAM_ANALYSIS_METRICS_TOKEN = "s3cret-" + "token"
    monkeypatch.setattr(prometheus.hmac, "compare_digest", divmod)
    settings.DEBUG = debug
    client.raise_request_exception = False

    # When a scraper sends its token
    response = client.get("/metrics", headers={"Authorization": "Bearer sent-" + "token"})

    # Then neither token shows in the page nor in the report mailed to ADMINS
    assert response.status_code == 500
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    report = ExceptionReporter(response.wsgi_request, *record.exc_info).get_traceback_html()
    for page in (response.content.decode(), report):
        assert "divmod()" in page or not debug
        assert "s3cret-token" not in page
        assert "sent-token" not in page
    assert "may_read_metrics" in report  # the report does show the frames


# -- what they say -------------------------------------------------------------------


def test_frames_by_status_lag_and_running_match_the_database(staff_client):
    # Given counts: 2 done, 1 pending, 1 failed, stream up to 100 s; flaky: 1 pending
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 100))
    CountFrame.objects.bulk_create(
        [
            CountFrame(start_time=at(0), calculated=True),
            CountFrame(start_time=at(15), calculated=True),
            CountFrame(start_time=at(30), failed=True, attempts=3),
            CountFrame(start_time=at(45)),
        ]
    )
    FlakyFrame.objects.create(start_time=at(0))
    AnalysisTask.require("minutely").cancel()

    samples = scrape(staff_client)

    frames = samples["stream_analysis_frames"]
    for task in AnalysisTask.get():
        status = task_status(task)
        for name in ("done", "pending", "failed"):
            assert frames[labels(task=task.key, status=name)] == getattr(status, name)
        running = samples["stream_analysis_task_running"][labels(task=task.key)]
        assert running == float(status.running)
    assert frames[labels(task="counts", status="done")] == 2
    assert frames[labels(task="flaky", status="pending")] == 1
    assert samples["stream_analysis_task_running"][labels(task="minutely")] == 0
    # counts: the stream is at 100 s, the newest calculated frame ends at 30 s
    assert samples["stream_analysis_lag_seconds"] == {labels(task="counts"): 70.0}


def test_the_last_tick_is_a_unix_timestamp(staff_client):
    ticked = timezone.now() - timedelta(seconds=42)
    AnalysisTask.objects.filter(pk=AnalysisTask.require("counts").pk).update(last_tick_at=ticked)

    samples = scrape(staff_client)

    assert samples["stream_analysis_last_tick_timestamp_seconds"] == {
        labels(task="counts"): pytest.approx(ticked.timestamp())
    }


def test_the_duration_histogram_bins_the_frames_calculated_in_the_window(staff_client):
    # Given frames calculated recently (one exactly on a bucket bound), one long
    # ago, and one not calculated
    now = timezone.now()
    recent = [0.003, 0.005, 0.07, 0.07, 0.4, 2.0, 45.0, 1000.0]
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(15 * i), calculated=True, analysis_time=t, calculated_at=now)
        for i, t in enumerate(recent)
    )
    CountFrame.objects.create(
        start_time=at(-15),
        calculated=True,
        analysis_time=0.07,
        calculated_at=now - timedelta(hours=1),
    )
    CountFrame.objects.create(start_time=at(-30), analysis_time=0.07)

    samples = scrape(staff_client)

    buckets = samples["stream_analysis_calculate_duration_seconds_bucket"]
    for bound in DURATION_BUCKETS:
        expected = sum(1 for t in recent if t <= bound)
        assert buckets[labels(task="counts", le=str(bound))] == expected, bound
    assert buckets[labels(task="counts", le="+Inf")] == len(recent)
    assert samples["stream_analysis_calculate_duration_seconds_gcount"][
        labels(task="counts")
    ] == len(recent)
    assert samples["stream_analysis_calculate_duration_seconds_gsum"][
        labels(task="counts")
    ] == pytest.approx(sum(recent))
    assert buckets[labels(task="flaky", le="+Inf")] == 0


def test_the_window_is_a_setting(staff_client, settings):
    calculated_at = timezone.now() - timedelta(minutes=30)
    CountFrame.objects.create(
        start_time=at(0), calculated=True, analysis_time=0.2, calculated_at=calculated_at
    )

    settings.STREAM_ANALYSIS_METRICS_WINDOW = 3600
    inside = scrape(staff_client)["stream_analysis_calculate_duration_seconds_bucket"]
    settings.STREAM_ANALYSIS_METRICS_WINDOW = 60
    outside = scrape(staff_client)["stream_analysis_calculate_duration_seconds_bucket"]

    assert inside[labels(task="counts", le="+Inf")] == 1
    assert outside[labels(task="counts", le="+Inf")] == 0


def test_rows_cleaned_up_are_counted_per_stream_across_runs(staff_client, settings):
    # Given counts has calculated up to 45 s; the other tasks reading Items are not configured
    settings.ANALYSIS_TIME_FRAME_TASKS = {"counts": settings.ANALYSIS_TIME_FRAME_TASKS["counts"]}
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(s), calculated=True) for s in (0, 15, 30, 45)
    )
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (1, 2, 20, 50))

    first = stream_analysis.cleanup()
    Item.objects.bulk_create(Item(created_at=at(s)) for s in (3, 44))
    second = stream_analysis.cleanup()
    samples = scrape(staff_client)

    stream = "tests.testapp.models.ItemStream"
    assert (first, second) == (3, 2)
    assert samples["stream_analysis_cleanup_rows_deleted_total"] == {labels(stream=stream): 5}
    assert CleanupTotal.objects.get(stream=stream).runs == 2
    last_run = samples["stream_analysis_cleanup_last_run_timestamp_seconds"]
    assert last_run[labels(stream=stream)] == pytest.approx(timezone.now().timestamp(), abs=60)


def test_a_stream_kept_whole_counts_a_run_and_no_rows(settings):
    settings.ANALYSIS_TIME_FRAME_TASKS = {
        "minutely": settings.ANALYSIS_TIME_FRAME_TASKS["minutely"]
    }
    Item.objects.create(created_at=at(0))  # no MinuteFrame yet: everything is kept

    assert stream_analysis.cleanup() == 0

    total = CleanupTotal.objects.get(stream="tests.testapp.models.ItemStream")
    assert (total.rows_deleted, total.runs) == (0, 1)
    assert MinuteFrame.objects.count() == 0


def test_prometheus_asking_for_openmetrics_gets_it(staff_client):
    CountFrame.objects.create(
        start_time=at(0), calculated=True, analysis_time=0.2, calculated_at=timezone.now()
    )

    response = staff_client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )

    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {family.name: family for family in parse_om(response.content.decode())}
    assert families["stream_analysis_calculate_duration_seconds"].type == "gaugehistogram"
    assert families["stream_analysis_frames"].type == "gauge"


def test_registering_the_collector_queries_nothing(django_assert_num_queries):
    registry = CollectorRegistry(auto_describe=True)

    with django_assert_num_queries(0):
        registry.register(StreamAnalysisCollector())
