"""The dashboard's live feed and tables where the page itself could lose or misstate what the records say:
a feed reopened after an answer that was not the stream, a pause longer than the feed, sums of the rest
beside groups named like them, figures too small for two decimals. Real ccproxy, real headless Chromium."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest
from playwright.sync_api import expect

from tests.dashboard_pages import (
    ALL_LOGS_ON,
    LIVE_FEED_DEADLINE_MS,
    PAGE_REFRESH_MS,
    dashboard_with_stream_route,
    feed_row,
    send_anthropic,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]


def test_a_feed_reopened_after_a_502_replays_what_finished_meanwhile(browser, proxy_factory):
    # As behind nginx while ccproxy restarts: the browser's own reconnect gets a 502, which closes the
    # source for good; the page opens a new one later. Before, that one started from nothing.
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    send_anthropic(proxy.url, "before")  # so the replay ring holds something older than the feed's last id
    calls: list[str] = []

    def stream(route):
        calls.append(route.request.url)
        if len(calls) == 1:  # one record, then the stream ends: the browser reconnects by itself
            record = {"request_id": "first", "client_request_id": "first", "status_code": 200}
            body = f"retry: 50\nid: 1\nevent: record\ndata: {json.dumps(record)}\n\n"
            route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)
        elif len(calls) == 2:
            send_anthropic(proxy.url, "meanwhile")  # finishes while the feed is down
            route.fulfill(status=502, body="bad gateway")
        else:
            route.continue_()

    with dashboard_with_stream_route(browser, proxy.url, stream) as tab:
        expect(feed_row(tab, "first")).to_be_visible(timeout=LIVE_FEED_DEADLINE_MS)
        expect(feed_row(tab, "meanwhile")).to_be_visible(timeout=PAGE_REFRESH_MS + LIVE_FEED_DEADLINE_MS)
        expect(feed_row(tab, "before")).to_be_visible()  # the ring's records after id 1: all of them
        assert "last_event_id=1" in calls[2]
        expect(tab.locator("#feed-status")).to_have_text("live")


def test_pause_counts_every_request_that_finished_while_paused(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")
    tab.locator("#pause").click()
    headers = {"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, headers=headers, timeout=10) as client:
        for _ in range(230):  # more than the feed's 200 rows
            assert client.post("/v1/messages", json=body).status_code == 200
    expect(tab.locator("#pause")).to_have_text("Resume (230 new)", timeout=10_000)
    tab.locator("#pause").click()
    expect(tab.locator("#feed tr")).to_have_count(200)
    problems.assert_none()


def test_a_cost_below_a_millionth_is_written_out_not_in_exponent_form(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#feed-status")).to_have_text("live")
    client = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key="sk-test", max_retries=0)
    client.embeddings.create(model="text-embedding-3-small", input="hi", extra_headers={"x-request-id": "tiny"})
    # text-embedding-3-small: $0.02 per million tokens, so a few tokens cost some hundred-millionths.
    below_a_millionth = re.compile(r"^\$0\.0000000?[1-9]\d?$")  # before: $2e-8
    expect(feed_row(tab, "tiny").locator("td").nth(8)).to_have_text(below_a_millionth, timeout=LIVE_FEED_DEADLINE_MS)
    problems.assert_none()


def test_projects_named_other_and_none_read_apart_from_the_rest_and_from_no_project(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    busiest = ["other", "(none)", None]  # twice each: in the top ten, ranked by cost
    for index, project in enumerate([*busiest, *busiest, *(f"p{n:02}" for n in range(10))]):
        send_anthropic(proxy.url, f"r{index}", **({"x-ccproxy-project": project} if project else {}))
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    expect(tab.locator("#by-dimension tr")).to_have_count(11, timeout=10_000)  # the top 10, and the rest summed
    expect(tab.locator('#by-dimension tr[data-key="other"] td.name:not(.derived)')).to_have_text("other")
    expect(tab.locator('#by-dimension tr[data-key="(none)"] td.name:not(.derived)')).to_have_text("(none)")
    expect(tab.locator('#by-dimension tr[data-derived="rest"] td.name.derived')).to_have_text("other")
    expect(tab.locator('#by-dimension tr[data-derived="none"] td.name.derived')).to_have_text("none")
    expect(tab.locator('#by-dimension tr[data-derived="none"] td').nth(1)).to_have_text("2")
    problems.assert_none()


def test_the_sessions_table_says_when_the_window_has_more_sessions_than_it_shows(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    for index in range(27):
        send_anthropic(proxy.url, f"s{index}", **{"x-ccproxy-session": f"session-{index:02}"})
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    note = tab.locator("#sessions tr.empty")
    expect(note).to_have_text(re.compile(r"^Showing the 25 most recently active of 27 sessions"), timeout=10_000)
    expect(tab.locator("#sessions tr:not(.empty)")).to_have_count(25)
    problems.assert_none()


def test_a_browser_clock_minutes_behind_still_counts_the_newest_requests(browser, proxy_factory):
    # Before, the windows ended at the browser's now: three minutes behind, the tiles left out the
    # requests of the last three minutes while the live feed showed them.
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    for index in range(3):
        send_anthropic(proxy.url, f"recent-{index}")
    context = browser.new_context()
    try:
        tab = context.new_page()
        tab.clock.set_system_time(datetime.now(UTC) - timedelta(minutes=3))
        tab.goto(f"{proxy.url}/dashboard#15m")
        expect(tab.locator('[data-tile="requests"] .tile-value')).to_have_text("3", timeout=10_000)
    finally:
        context.close()
