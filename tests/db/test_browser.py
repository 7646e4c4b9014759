"""End to end in a real browser: headless Chromium logs into the admin, reads the
analysis-tasks page and the demo's dashboard, and finds the database's numbers.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them).
Without them the test is skipped, except under CI (``CI`` set), where it fails:
CI must not pass without having run it. Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from stream_analysis.models import AnalysisTask
from stream_analysis.status import TaskStatus, task_status
from tests.conftest import REPO, at
from tests.testapp.models import CountFrame, Item

pytestmark = [pytest.mark.browser, pytest.mark.urls("tests.dashboard_urls")]

OUTPUT = REPO / "test-output"
PASSWORD = "browser-test-pw"
#: No network beyond loopback: without these, Chromium keeps calling Google's hosts.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    """Headless Debian Chromium through its ChromeDriver, with a fresh profile."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        message = "Chromium not found: apt-get install chromium chromium-driver"
        if in_ci():
            pytest.fail(f"{message} (CI is set: the browser test must run, not skip)")
        pytest.skip(message)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    # Both paths given: Selenium Manager (which would download drivers) is not used.
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(30)
    yield chrome
    chrome.quit()


def wait_for(browser: WebDriver, predicate, what: str, timeout: float = 15):  # type: ignore[no-untyped-def]
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(
        lambda _: predicate(), message=f"waiting for {what}"
    )


def text(element: WebElement) -> str:
    return (element.get_attribute("textContent") or "").strip()


def screenshot(browser: WebDriver, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(OUTPUT / name))


def log_in(browser: WebDriver, base_url: str) -> None:
    browser.get(f"{base_url}/admin/login/?next=/admin/")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, lambda: browser.find_elements(By.ID, "logout-form"), "the login")


def admin_row(browser: WebDriver, key: str) -> dict[str, str]:
    """The analysis-tasks changelist's row of ``key``: {column: text}."""
    for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr"):
        cells = {
            name.removeprefix("field-"): text(cell)
            for cell in row.find_elements(By.CSS_SELECTOR, "td, th")
            for name in (cell.get_attribute("class") or "").split()
            if name.startswith("field-")
        }
        if cells.get("key") == key:
            return cells
    raise AssertionError(f"no row for task {key!r} on the analysis-tasks page")


# The dashboard redraws itself every half second (tests/dashboard_urls.py): each
# read is one script, so that it never sees half a redraw or a replaced element.
DASHBOARD_ROWS = """
return Object.fromEntries([...document.querySelectorAll("#tasks tbody tr")].map((row) => [
    row.getAttribute("data-task"),
    Object.fromEntries([...row.cells].map((cell) => [
        cell.getAttribute("data-field"), cell.textContent.trim()])),
]));
"""
BARS = """
return [...document.querySelectorAll("#frames g.frame")].map((group) => [
    group.getAttribute("data-start"),
    group.getAttribute("data-status"),
    group.querySelector("text.bar-label").textContent.trim(),
]);
"""


def dashboard_row(browser: WebDriver, key: str) -> dict[str, str]:
    """The dashboard's tasks-table row of ``key``: {field: text shown}."""
    return browser.execute_script(DASHBOARD_ROWS)[key]


def bars(browser: WebDriver) -> list[tuple[str, str, str]]:
    """The dashboard's bars, oldest first: (frame start, status, label shown)."""
    return [tuple(bar) for bar in browser.execute_script(BARS)]  # type: ignore[misc]


def lag_text(status: TaskStatus, empty: str) -> str:
    return empty if status.lag_seconds is None else f"{status.lag_seconds:.1f}"


def test_staff_see_the_database_numbers_in_the_admin_and_on_the_dashboard(
    browser: WebDriver, live_server, transactional_db: None
):
    # Given a staff user, and the counts task with 12 frames counted, 1 failed,
    # 2 pending, and a stream 40 s past its newest calculated frame
    User.objects.create_superuser("admin", "admin@example.invalid", PASSWORD)
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(15 * i), calculated=True, item_count=(5 * i) % 17, attempts=1)
        for i in range(12)
    )
    CountFrame.objects.create(start_time=at(15 * 12), failed=True, attempts=3)
    CountFrame.objects.bulk_create(CountFrame(start_time=at(15 * i)) for i in (13, 14))
    Item.objects.create(created_at=at(15 * 12 + 40))
    AnalysisTask.require("minutely").cancel()

    # When staff log in through the admin's form and open the analysis tasks
    log_in(browser, live_server.url)
    browser.get(f"{live_server.url}/admin/stream_analysis/analysistask/")

    # Then every task's row shows its numbers as the database has them
    for task in AnalysisTask.get():
        status, row = task_status(task), admin_row(browser, task.key)
        assert (row["done"], row["pending"], row["failed"]) == (
            str(status.done),
            str(status.pending),
            str(status.failed),
        ), task.key
        assert row["lag"] == lag_text(status, empty="-"), task.key
    assert admin_row(browser, "counts")["done"] == "12"
    assert admin_row(browser, "counts")["lag"] == "40.0"
    screenshot(browser, "admin-analysis-tasks.png")
    browser.find_element(By.LINK_TEXT, "Item counts").click()
    wait_for(browser, lambda: "Item counts" in browser.title, "the task's page")
    screenshot(browser, "admin-analysis-task-counts.png")

    # When they open the dashboard
    browser.get(f"{live_server.url}/dashboard/")
    wait_for(browser, lambda: len(bars(browser)) == 15, "the dashboard's 15 bars")

    # Then each bar is a frame, oldest first, labelled with its count, and the
    # tasks table shows each task's lag and counts
    expected = [
        (
            frame.start_time.isoformat(),
            frame.status,
            str(frame.item_count) if frame.calculated else "✕" if frame.failed else "…",
        )
        for frame in CountFrame.objects.order_by("start_time")
    ]
    assert bars(browser) == expected
    for task in AnalysisTask.get():
        status, row = task_status(task), dashboard_row(browser, task.key)
        assert row["lag_seconds"] == lag_text(status, empty="—"), task.key
        assert (row["done"], row["pending"], row["failed"]) == (
            str(status.done),
            str(status.pending),
            str(status.failed),
        )
        assert row["running"] == ("yes" if status.running else "no")
    screenshot(browser, "dashboard.png")

    # When a worker calculates a pending frame, the open page shows it by itself
    CountFrame.objects.filter(start_time=at(15 * 13)).update(
        calculated=True, item_count=99, attempts=1
    )
    wait_for(
        browser, lambda: (at(15 * 13).isoformat(), "calculated", "99") in bars(browser), "a redraw"
    )
    wait_for(
        browser,
        lambda: dashboard_row(browser, "counts")["lag_seconds"] == "10.0",
        "the new lag (the stream is 10 s past the frame ending at 210 s)",
    )
    screenshot(browser, "dashboard-refreshed.png")


def test_staff_open_the_results_page_of_a_frame_model_and_see_its_chart(
    browser: WebDriver, live_server, transactional_db: None
):
    # Given 20 counted frames, one of them failed and one missing
    User.objects.create_superuser("admin", "admin@example.invalid", PASSWORD)
    CountFrame.objects.bulk_create(
        CountFrame(start_time=at(15 * i), calculated=True, item_count=i, attempts=1)
        for i in range(20)
        if i not in (7, 12)
    )
    CountFrame.objects.create(start_time=at(15 * 7), failed=True, attempts=3)

    # When staff open the frames' list and follow its Results link
    log_in(browser, live_server.url)
    browser.get(f"{live_server.url}/admin/testapp/countframe/")
    browser.find_element(By.CSS_SELECTOR, "a.results-link").click()
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "svg.results-chart"), "chart")

    # Then the chart shows the values, broken at the failed and the missing frame
    chart = browser.find_element(By.CSS_SELECTOR, "svg.results-chart")
    assert len(chart.find_elements(By.CSS_SELECTOR, "polyline.series")) == 3
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.band-failed")) == 1
    assert len(chart.find_elements(By.CSS_SELECTOR, "rect.band-gap")) == 1
    summary = text(browser.find_element(By.CSS_SELECTOR, ".results-summary"))
    assert "18 of 20 buckets have a value" in " ".join(summary.split())
    assert chart.size["width"] > 300 and chart.size["height"] > 100
    screenshot(browser, "admin-results-countframe.png")

    # And its CSV export link carries the range shown
    link = browser.find_element(By.CSS_SELECTOR, "a.export-csv").get_attribute("href") or ""
    assert "/results/export.csv?start=" in link and "&end=" in link
