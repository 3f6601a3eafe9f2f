"""What the dashboard shows is the window it names, in the reader's way: a session's requests of the
window, a feed that resumes from where it joined, numbers and times written and labelled for the
browser's locale and zone. Real ccproxy, real headless Chromium."""

from __future__ import annotations

import re
import uuid

import duckdb
import httpx
import pytest
from playwright.sync_api import expect

from ccproxy_core import hookimpl
from ccproxy_core.testing import wait_until
from tests.dashboard_pages import (
    ALL_LOGS_ON,
    LIVE_FEED_DEADLINE_MS,
    PAGE_REFRESH_MS,
    UNPRICED_MODEL,
    dashboard_with_stream_route,
    feed_row,
    send_anthropic,
    tile_value,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]
NO_FIGURE = "\u2013"  # the page's dash for a figure it does not have


def stored(proxy_url: str, count: int) -> list[dict]:
    def ready():
        rows = httpx.get(f"{proxy_url}/logs/query", params={"limit": 100}).json()["results"]
        return rows if len(rows) == count else None

    return wait_until(ready, timeout=10)


def test_a_sessions_requests_are_those_of_the_window_its_line_sums(open_dashboard, proxy_factory, tmp_path):
    settings = ALL_LOGS_ON | {"duckdb_path": str(tmp_path / "sessions.duckdb")}
    session = str(uuid.uuid4())
    older = proxy_factory(observability=settings)
    for n in range(2):
        send_anthropic(older.url, f"two-days-ago-{n}", **{"x-ccproxy-session": session})
    stored(older.url, 2)
    older.stop()
    with duckdb.connect(settings["duckdb_path"]) as connection:  # as if made two days ago
        connection.execute("""UPDATE access_logs SET "timestamp" = "timestamp" - INTERVAL 2 DAY""")
    proxy = proxy_factory(observability=settings)
    for n in range(3):
        send_anthropic(proxy.url, f"now-{n}", **{"x-ccproxy-session": session})
    now = [row["request_id"] for row in reversed(stored(proxy.url, 5)[:3])]

    tab, problems = open_dashboard(f"{proxy.url}/dashboard#1h")
    row = tab.locator(f'#sessions tr[data-session-id="{session}"]')
    expect(row.locator("td").nth(5)).to_have_text("3")
    row.locator("button.link").click()
    expect(tab.locator("#session-requests tr[data-request-id]")).to_have_count(3)
    shown = tab.locator("#session-requests tr[data-request-id]").evaluate_all(
        "rows => rows.map(r => r.dataset.requestId)"
    )
    assert shown == now  # the window's, oldest first: before, the session's first requests, two days old
    expect(tab.locator("#session-requests tr.empty")).to_have_count(0)
    problems.assert_none()


def test_a_feed_closed_before_its_first_record_resumes_from_where_it_joined(browser, proxy_factory):
    # A proxy in front answers 502 while ccproxy restarts: that closes the browser's source for good, and
    # the id the stream's bare "id:" line gave it goes with it. The page joins from /logs/status instead.
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    send_anthropic(proxy.url, "before")  # finished before the page joined: never shown
    calls: list[str] = []

    def stream(route):
        calls.append(route.request.url)
        if len(calls) == 1:
            send_anthropic(proxy.url, "meanwhile")  # finishes while the feed is down
            route.fulfill(status=502, body="bad gateway")
        else:
            route.continue_()

    with dashboard_with_stream_route(browser, proxy.url, stream) as tab:
        expect(feed_row(tab, "meanwhile")).to_be_visible(timeout=PAGE_REFRESH_MS + LIVE_FEED_DEADLINE_MS)
        assert "last_event_id=" in calls[0] and "last_event_id=" in calls[1]
        expect(tab.locator("#feed-status")).to_have_text("live")
        expect(feed_row(tab, "before")).to_have_count(0)


def test_numbers_and_times_are_written_and_labelled_for_the_readers_locale_and_zone(browser, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    context = browser.new_context(locale="de-DE", timezone_id="America/Los_Angeles")
    try:
        tab = context.new_page()
        tab.goto(f"{proxy.url}/dashboard#15m")
        expect(tab.locator("#refresh-status")).to_contain_text("times in America/Los_Angeles")
        expect(tile_value(tab, "error_rate")).to_have_text(NO_FIGURE)  # no requests: no rate, not 0.0%
        send_anthropic(proxy.url, "priced")
        send_anthropic(proxy.url, "unknown", model=UNPRICED_MODEL)
        expect(tile_value(tab, "requests")).to_have_text("2", timeout=10_000)
        expect(tile_value(tab, "error_rate")).to_have_text("0,0 %")
        expect(tile_value(tab, "cost_usd")).to_have_text(re.compile(r"^0,\d+\s\$$"))  # 0,0012 $, not $0.0012
    finally:
        context.close()


def test_each_point_of_the_series_names_its_requests_without_a_known_cost(proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    send_anthropic(proxy.url, "unknown", model=UNPRICED_MODEL)
    stored(proxy.url, 1)
    for hours in (1, 24):  # read from the rows, and from the rollups
        answer = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": hours}).json()
        [point] = [p for p in answer["timeseries"]["points"] if p["requests"]]
        assert (point["requests"], point["unpriced_requests"], point["cost_usd"]) == (1, 1, 0)


def test_chart_times_are_written_the_readers_way(browser, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    send_anthropic(proxy.url, "one")
    context = browser.new_context(locale="de-DE", timezone_id="Europe/Berlin", viewport={"width": 1400, "height": 1000})
    try:
        tab = context.new_page()
        tab.goto(f"{proxy.url}/dashboard#15m")
        expect(tile_value(tab, "requests")).to_have_text("1", timeout=10_000)
        chart = tab.locator("#chart-requests")
        chart.locator(".u-over").hover()  # the legend shows the bucket under the pointer
        shown = chart.locator(".u-legend .u-series").first.locator(".u-value").inner_text()
        assert re.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4} \d{1,2}:\d\d", shown), shown  # 5.12.2026 08:42, not 12/5 8:42am
    finally:
        context.close()


class UnreachableStore:
    """A log store that cannot be reached, as a stopped ClickHouse server."""

    @hookimpl(tryfirst=True)
    def get_log_store(self, app):
        raise ConnectionRefusedError("Code: 210. Connection refused (127.0.0.1:9000)")


def test_a_store_that_does_not_answer_is_named_not_called_empty(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON, plugins=[UnreachableStore()])
    tab, _problems = open_dashboard(f"{proxy.url}/dashboard")
    # Before: "ccproxy has no stored history to chart." above the store's error, while the history was there.
    expect(tab.locator("#notice-title")).to_have_text("ccproxy could not read its stored history.")
    expect(tab.locator("#notice-text")).to_contain_text("Connection refused")


def test_a_window_named_in_the_address_bar_is_the_window_shown(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard#1h")
    expect(tab.locator("body")).to_have_attribute("data-state", "ready")
    with tab.expect_request(lambda request: "/logs/analytics" in request.url) as asked:
        tab.goto(f"{proxy.url}/dashboard#24h")  # the fragment alone changes: the page is not loaded again
    query = httpx.URL(asked.value.url).params
    assert int(query["end_time"]) - int(query["start_time"]) == 86_400
    expect(tab.locator('[data-window="24h"]')).to_have_attribute("aria-pressed", "true")
    problems.assert_none()


@pytest.mark.parametrize(("errors", "shown"), [(1, "<0.01%"), (24_999, ">99.9%"), (0, "0.0%")])
def test_an_error_rate_between_none_and_all_never_reads_as_either(browser, proxy_factory, errors, shown):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    send_anthropic(proxy.url, "one")
    stored(proxy.url, 1)

    def busier(route):  # the stored answer, as a window of 25,000 requests would give it
        answer = route.fetch()
        analytics = answer.json()
        analytics["totals"].update(requests=25_000, errors=errors, error_rate=errors / 25_000)
        route.fulfill(response=answer, json=analytics)

    context = browser.new_context(locale="en-US")
    try:
        context.route("**/logs/analytics*", busier)
        tab = context.new_page()
        tab.goto(f"{proxy.url}/dashboard#15m")
        expect(tile_value(tab, "requests")).to_have_attribute("data-value", "25000", timeout=10_000)
        expect(tile_value(tab, "error_rate")).to_have_text(shown)
    finally:
        context.close()
