"""The dashboard in a real headless Chromium, against a real ccproxy and the mock provider.

Needs Debian's ``chromium`` (``make system-deps``) and the built bundle (``make dashboard``).
Playwright drives the system browser; ``playwright install`` is never needed.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from ccproxy_core.testing import wait_until
from ccproxy_dashboard import bundle
from ccproxy_dashboard import page as dashboard_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TEST_OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
LIVE_FEED_DEADLINE_MS = 2_000
XSS = "<img src=x onerror=alert(1)>"
PROMPT = "Count the tokens of this prompt, which is long enough for the mock to bill something. " * 3
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
HTML_MODEL = "claude-<b>bold</b>"
ALL_LOGS_ON = {
    "dashboard_enabled": True,
    "logs_endpoints_enabled": True,
    "logs_collection_enabled": True,
    "log_flush_interval_seconds": 0.1,
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists() or shutil.which("chromium"), "install Debian's chromium: make system-deps"
    assert not bundle.missing_entry_files(), f"the dashboard bundle is not built: run `{bundle.BUILD_COMMAND}`"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class PageProblems:
    """What the page reported that a person would call broken."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def assert_none(self) -> None:
        assert self.console_errors == [], self.console_errors
        assert self.page_errors == [], self.page_errors
        assert self.dialogs == [], f"the page opened dialogs (script ran): {self.dialogs}"


@pytest.fixture
def open_dashboard(browser, proxy_factory) -> Iterator[Callable[[str], tuple[Page, PageProblems]]]:
    """Open a page in a fresh browser context; every context is closed before the proxies stop.

    (An open page holds a /logs/stream connection, and the proxy waits for it when stopping.)
    """
    contexts: list[BrowserContext] = []

    def open_page(url: str) -> tuple[Page, PageProblems]:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        tab = context.new_page()
        problems = PageProblems()
        tab.on("console", lambda message: message.type == "error" and problems.console_errors.append(message.text))
        tab.on("pageerror", lambda error: problems.page_errors.append(str(error)))
        tab.on("dialog", lambda dialog: (problems.dialogs.append(dialog.message), dialog.dismiss()))
        tab.goto(url)
        return tab, problems

    yield open_page
    for context in contexts:
        context.close()


def feed_row(tab: Page, request_id: str):
    """The feed row of the request the test sent with ``x-request-id: <request_id>`` (the client's id)."""
    return tab.locator(f'#feed tr[data-client-request-id="{request_id}"]')


def tile_value(tab: Page, key: str):
    return tab.locator(f'[data-tile="{key}"] .tile-value')


def request_headers(request_id: str, user_agent: str | None = None) -> dict[str, str]:
    return {"x-request-id": request_id, "User-Agent": user_agent or f"dashboard-test/{request_id}"}


def send_anthropic(proxy_url: str, request_id: str, stream: bool = False, model: str = ANTHROPIC_MODEL, **headers) -> None:
    client = anthropic.Anthropic(base_url=proxy_url, api_key="sk-test", max_retries=0)
    kwargs = {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": PROMPT}]}
    extra = {**request_headers(request_id, headers.pop("user_agent", None)), **headers}
    if stream:
        with client.messages.stream(**kwargs, extra_headers=extra) as events:
            events.get_final_message()
    else:
        client.messages.create(**kwargs, extra_headers=extra)


def send_openai(proxy_url: str, request_id: str, stream: bool = False) -> None:
    client = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="sk-test", max_retries=0)
    kwargs = {"model": OPENAI_MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        kwargs |= {"stream": True, "stream_options": {"include_usage": True}}
    answer = client.chat.completions.create(**kwargs, extra_headers=request_headers(request_id))
    if stream:
        list(answer)


def stored_analytics(proxy_url: str, expected_requests: int, headers: dict[str, str] | None = None) -> dict:
    """/logs/analytics for the last hour, once the writer has stored ``expected_requests`` rows."""

    def ready():
        body = httpx.get(f"{proxy_url}/logs/analytics", params={"hours": 1, "bucket": "minute"}, headers=headers).json()
        return body if body["totals"]["requests"] == expected_requests else None

    return wait_until(ready, timeout=10)


def assert_tiles_match(tab: Page, analytics: dict) -> None:
    expected = {
        "requests": analytics["totals"]["requests"],
        "error_rate": analytics["totals"]["error_rate"],
        "tokens_input": analytics["tokens"]["input"],
        "tokens_output": analytics["tokens"]["output"],
        "cache_read": analytics["tokens"]["cache_read"],
        "cache_write": analytics["tokens"]["cache_write"],
        "cost_usd": analytics["cost"]["total_usd"],
        "latency_p50": analytics["duration_ms"]["p50"],
        "latency_p95": analytics["duration_ms"]["p95"],
        "ttft_p50": analytics["ttft_ms"]["p50"],
    }
    for key, value in expected.items():
        shown = tile_value(tab, key).get_attribute("data-value")
        if value is None:
            assert shown == "", key
        else:
            assert math.isclose(float(shown), value, rel_tol=1e-9, abs_tol=1e-12), (key, shown, value)


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
    with httpx.Client(base_url=proxy.url, headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}) as client:
        for number in range(total):
            client.post("/v1/messages", json=body, headers={"x-request-id": f"bulk-{number}"}).raise_for_status()
    expect(tab.locator("#feed tr").first).to_have_attribute("data-client-request-id", f"bulk-{total - 1}", timeout=5_000)
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
