"""The dashboard in a real headless Chromium, against a real ccproxy and the mock provider.

Needs Debian's ``chromium`` (``make system-deps``) and the built bundle (``make dashboard``).
Playwright drives the system browser; ``playwright install`` is never needed.
"""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import anthropic
import httpx
import pytest
from playwright.sync_api import expect

from ccproxy_dashboard import page as dashboard_page
from tests.dashboard_pages import (
    ALL_LOGS_ON,
    ANTHROPIC_MODEL,
    HTML_MODEL,
    LIVE_FEED_DEADLINE_MS,
    NO_VALUE,
    TEST_OUTPUT,
    UNPRICED_MODEL,
    XSS,
    assert_tiles_match,
    feed_row,
    send_anthropic,
    send_openai,
    stored_analytics,
    tile_value,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]


def test_live_feed_tiles_tables_and_screenshot(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")

    senders = {
        "anthropic-json": lambda rid: send_anthropic(proxy.url, rid),
        "anthropic-stream": lambda rid: send_anthropic(proxy.url, rid, stream=True),
        "openai-json": lambda rid: send_openai(proxy.url, rid),
        "openai-stream": lambda rid: send_openai(proxy.url, rid, stream=True),
    }
    for request_id, send in senders.items():
        send(request_id)
        expect(feed_row(tab, request_id)).to_be_visible(timeout=LIVE_FEED_DEADLINE_MS)
    with pytest.raises(anthropic.RateLimitError) as rate_limited:
        send_anthropic(proxy.url, "rate-limited", **{"x-mock-status": "429"})
    rate_limited_id = rate_limited.value.response.headers["x-ccproxy-request-id"]
    expect(feed_row(tab, "rate-limited").locator("td.status")).to_have_text("429", timeout=LIVE_FEED_DEADLINE_MS)
    expect(tab.locator("#feed tr").first).to_have_attribute("data-request-id", rate_limited_id)

    analytics = stored_analytics(proxy.url, expected_requests=5)
    tab.click('[data-window="1h"]')  # refresh now instead of waiting for the next poll
    expect(tile_value(tab, "requests")).to_have_attribute("data-value", "5", timeout=5_000)
    assert_tiles_match(tab, analytics)
    expect(tile_value(tab, "requests")).to_have_text("5")

    by_model = {group["model"]: group for group in analytics["by_model"]}
    expect(tab.locator(f'#by-model tr[data-name="{ANTHROPIC_MODEL}"] td').nth(1)).to_have_text(
        str(by_model[ANTHROPIC_MODEL]["requests"])
    )
    expect(tab.locator('#by-service tr[data-name="openai"] td').nth(1)).to_have_text("2")
    error_row = tab.locator(f'#recent-errors tr[data-request-id="{rate_limited_id}"]')
    expect(error_row.locator("td").nth(1)).to_have_text("429")
    expect(error_row.locator("td").nth(2)).to_have_text("rate_limit_error")
    expect(tab.locator("#charts .uplot canvas")).to_have_count(4)

    TEST_OUTPUT.mkdir(exist_ok=True)
    tab.screenshot(path=TEST_OUTPUT / "dashboard.png", full_page=True)
    problems.assert_none()


def test_unknown_costs_show_as_unknown_never_as_zero(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")
    for n in range(2):
        send_anthropic(proxy.url, f"unpriced-{n}", model=UNPRICED_MODEL)
    expect(feed_row(tab, "unpriced-1").locator("td").nth(8)).to_have_text(NO_VALUE, timeout=LIVE_FEED_DEADLINE_MS)
    stored_analytics(proxy.url, expected_requests=2)
    tab.click('[data-window="1h"]')
    expect(tile_value(tab, "requests")).to_have_text("2", timeout=5_000)
    cost_tile = tab.locator('[data-tile="cost_usd"]')
    expect(cost_tile.locator(".tile-value")).to_have_text(NO_VALUE)
    expect(cost_tile.locator(".tile-note")).to_have_text("2 requests without a known cost")
    expect(tab.locator(f'#by-model tr[data-name="{UNPRICED_MODEL}"] td.cost')).to_have_text(NO_VALUE)

    send_anthropic(proxy.url, "priced")
    analytics = stored_analytics(proxy.url, expected_requests=3)
    tab.click('[data-window="1h"]')
    expect(tile_value(tab, "requests")).to_have_text("3", timeout=5_000)
    assert_tiles_match(tab, analytics)
    assert analytics["cost"]["total_usd"] > 0
    expect(cost_tile.locator(".tile-value")).to_have_text(re.compile(r"^\$\d"))
    expect(cost_tile.locator(".tile-note")).to_have_text("2 requests without a known cost")
    expect(tab.locator(f'#by-model tr[data-name="{UNPRICED_MODEL}"] td.cost')).to_have_text(NO_VALUE)
    expect(tab.locator(f'#by-model tr[data-name="{ANTHROPIC_MODEL}"] td.cost')).to_have_text(re.compile(r"^\$\d[^+]*$"))
    mixed = re.compile(r"^\$\d.* \+2 unknown$")
    expect(tab.locator('#by-service tr[data-name="anthropic"] td.cost')).to_have_text(mixed)
    expect(tab.locator("#by-dimension tr td.cost").first).to_have_text(mixed, timeout=10_000)
    problems.assert_none()


def test_request_strings_render_as_text_and_run_nothing(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")

    send_anthropic(proxy.url, "xss-agent", user_agent=f"evil {XSS}")
    agent_cell = feed_row(tab, "xss-agent").locator("td.agent")
    expect(agent_cell).to_have_text(f"evil {XSS}", timeout=LIVE_FEED_DEADLINE_MS)
    send_anthropic(proxy.url, "xss-model", model=HTML_MODEL)
    expect(feed_row(tab, "xss-model").locator("td.model")).to_have_text(HTML_MODEL, timeout=LIVE_FEED_DEADLINE_MS)

    stored_analytics(proxy.url, expected_requests=2)
    tab.click('[data-window="15m"]')
    expect(tab.locator(f'#by-model tr[data-name="{HTML_MODEL}"] td.name')).to_have_text(HTML_MODEL)
    assert tab.locator("img").count() == 0
    assert tab.locator("main b").count() == 0
    problems.assert_none()


def test_pause_holds_rows_until_resumed(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")

    tab.click("#pause")
    send_anthropic(proxy.url, "while-paused")
    expect(tab.locator("#pause")).to_have_text("Resume (1 new)", timeout=LIVE_FEED_DEADLINE_MS)
    expect(feed_row(tab, "while-paused")).to_have_count(0)
    tab.click("#pause")
    expect(feed_row(tab, "while-paused")).to_be_visible()
    expect(tab.locator("#pause")).to_have_text("Pause")
    problems.assert_none()


def test_feed_keeps_a_bounded_number_of_rows(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability={**ALL_LOGS_ON, "logs_collection_enabled": False})
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")

    total = dashboard_page.FEED_MAX_ROWS + 20
    body = {"model": ANTHROPIC_MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(
        base_url=proxy.url, headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
    ) as client:
        for number in range(total):
            client.post("/v1/messages", json=body, headers={"x-request-id": f"bulk-{number}"}).raise_for_status()
    expect(tab.locator("#feed tr").first).to_have_attribute(
        "data-client-request-id", f"bulk-{total - 1}", timeout=5_000
    )
    expect(tab.locator("#feed tr")).to_have_count(dashboard_page.FEED_MAX_ROWS)
    expect(feed_row(tab, "bulk-0")).to_have_count(0)
    problems.assert_none()


def test_window_selector_asks_for_that_window(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("body")).to_have_attribute("data-state", "ready")
    for key, seconds, bucket in (("15m", 900, "minute"), ("24h", 86_400, "hour"), ("7d", 604_800, "hour")):
        with tab.expect_request(lambda request: "/logs/analytics" in request.url) as asked:
            tab.click(f'[data-window="{key}"]')
        query = httpx.URL(asked.value.url).params
        assert int(query["end_time"]) - int(query["start_time"]) == seconds
        assert query["bucket"] == bucket
        expect(tab.locator(f'[data-window="{key}"]')).to_have_attribute("aria-pressed", "true")
    assert tab.url.endswith("#7d")
    problems.assert_none()


@pytest.mark.parametrize("fragment", ["constructor", "__proto__", "toString"])
def test_a_link_with_a_window_that_is_not_one_opens_the_default(open_dashboard, proxy_factory, fragment):
    # Any web page may link here: a fragment naming an inherited property once left the page loading forever.
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard#{fragment}")
    expect(tab.locator("body")).to_have_attribute("data-state", "ready")
    expect(tab.locator('[data-window="1h"]')).to_have_attribute("aria-pressed", "true")
    problems.assert_none()


def test_token_link_sets_cookie_that_the_page_uses(open_dashboard, proxy_factory):
    token = "dashboard-test-token"
    proxy = proxy_factory(observability=ALL_LOGS_ON, security={"auth_token": token})
    send_anthropic(proxy.url, "before-open")
    stored_analytics(proxy.url, 1, headers={"Authorization": f"Bearer {token}"})

    tab, problems = open_dashboard(f"{proxy.url}/dashboard?token={token}")
    assert tab.url == f"{proxy.url}/dashboard"
    expect(tile_value(tab, "requests")).to_have_attribute("data-value", "1")
    expect(tab.locator("#feed-status")).to_have_text("live")
    [cookie] = tab.context.cookies()
    port = proxy.url.rsplit(":", 1)[1]
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"]) == (f"ccproxy_session_{port}", True, "Strict")
    assert token not in cookie["value"]
    assert tab.evaluate("document.cookie") == ""
    send_anthropic(proxy.url, "after-open")
    expect(feed_row(tab, "after-open")).to_be_visible(timeout=LIVE_FEED_DEADLINE_MS)
    problems.assert_none()


def test_logs_endpoints_off_names_the_setting(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability={"dashboard_enabled": True})
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#notice")).to_be_visible()
    expect(tab.locator("#notice-code")).to_have_text("OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true")
    expect(tab.locator("#analytics")).to_be_hidden()
    expect(tab.locator("#live")).to_be_hidden()
    expect(tab.locator("body")).to_have_attribute("data-state", "disabled")
    problems.assert_none()


def test_collection_off_names_the_setting_and_keeps_the_feed(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability={"dashboard_enabled": True, "logs_endpoints_enabled": True})
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#notice-code")).to_have_text("OBSERVABILITY__LOGS_COLLECTION_ENABLED=true")
    expect(tab.locator("#analytics")).to_be_hidden()
    expect(tab.locator("#feed-status")).to_have_text("live")
    send_openai(proxy.url, "no-collection")
    expect(feed_row(tab, "no-collection")).to_be_visible(timeout=LIVE_FEED_DEADLINE_MS)
    problems.assert_none()


def test_store_missing_at_run_time_shows_the_servers_advice(open_dashboard, proxy_factory):
    observability = {**ALL_LOGS_ON, "log_storage_backend": "none"}
    proxy = proxy_factory(observability=observability)
    advice = httpx.get(f"{proxy.url}/logs/analytics", params={"hours": 1}).json()["detail"]
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#notice-text")).to_have_text(advice)
    expect(tab.locator("#notice-code")).to_be_hidden()
    expect(tab.locator("#analytics")).to_be_hidden()
    expect(tab.locator("#feed-status")).to_have_text("live")
    # Chromium reports the 503 itself as a console error; nothing else may appear.
    problems.console_errors = [text for text in problems.console_errors if "status of 503" not in text]
    problems.assert_none()


def test_the_cost_axis_is_wide_enough_for_five_figure_amounts(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("body")).to_have_attribute("data-state", "ready")
    # claude-opus-4-1 input at $15 per million tokens: ten million tokens cost $150 a request, $21,000 for
    # 140; sent within a minute, they fall in at most two of the chart's minute buckets, one of which then
    # holds $10,500 or more: the axis labels reach "$10,000.00".
    for n in range(140):
        send_anthropic(proxy.url, f"costly-{n}", model="claude-opus-4-1", **{"x-mock-input-tokens": "10000000"})
    analytics = stored_analytics(proxy.url, expected_requests=140)
    assert analytics["cost"]["total_usd"] > 20_000
    tab.click('[data-window="1h"]')
    expect(tile_value(tab, "requests")).to_have_text("140", timeout=5_000)
    # The plot starts where the y axis ends; the axis needs room for its widest label, "$10,000.00".
    room = tab.evaluate(
        """() => {
            const plot = document.querySelector("#chart-cost .u-over");
            const context = document.createElement("canvas").getContext("2d");
            context.font = "12px system-ui, sans-serif";
            return { axis: plot.offsetLeft, label: context.measureText("$10,000.00").width };
        }"""
    )
    assert room["axis"] >= room["label"] + 15, room  # uPlot's tick (10 px) and gap (5 px) come first
    problems.assert_none()


def test_windows_end_at_the_servers_now_however_late_the_script_runs(browser, proxy_factory):
    # On a busy machine the script runs seconds after the page was answered. Before, the page took the server's
    # time as of the script's start, ran that far behind it for good, and its windows left out the newest requests.
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    context = browser.new_context()
    try:
        tab = context.new_page()

        def late_script(route):
            time.sleep(2)
            route.continue_()

        tab.route(re.compile(r".*/dashboard\.js.*"), late_script)
        asked: list[tuple[float, str]] = []
        tab.on("request", lambda request: "/logs/analytics" in request.url and asked.append((time.time(), request.url)))
        tab.goto(f"{proxy.url}/dashboard")
        expect(tab.locator("body")).to_have_attribute("data-state", "ready", timeout=15_000)
        when, url = asked[0]
        assert int(parse_qs(urlsplit(url).query)["end_time"][0]) > when
    finally:
        context.close()
