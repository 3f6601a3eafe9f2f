"""The dashboard page in headless Chromium: launching the system browser, opening pages, reading tiles and feed rows.

The ``browser`` and ``open_dashboard`` fixtures (tests/conftest.py) use it; tests marked
``browser`` skip, naming the package, when Debian's ``chromium`` is missing.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from ccproxy_core.testing import wait_until
from tests.tools import tool_path

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--lang=en-US",  # the page writes numbers the reader's way: the tests read them as written in the US
]
TEST_OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
LIVE_FEED_DEADLINE_MS = 2_000
PAGE_REFRESH_MS = 5_000  # the page reopens a closed feed after its refresh interval
XSS = "<img src=x onerror=alert(1)>"
PROMPT = "Count the tokens of this prompt, which is long enough for the mock to bill something. " * 3
ANTHROPIC_MODEL = "claude-sonnet-4-5"
OPENAI_MODEL = "gpt-4o-mini"
NO_VALUE = "\u2013"  # what the page shows for a value it does not have
UNPRICED_MODEL = "acme-llm-1"  # no price list knows it: its requests have no cost
HTML_MODEL = "claude-<b>bold</b>"
ALL_LOGS_ON = {
    "dashboard_enabled": True,
    "logs_endpoints_enabled": True,
    "logs_collection_enabled": True,
    "log_flush_interval_seconds": 0.1,
}


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


def feed_row(tab: Page, request_id: str):
    """The feed row of the request the test sent with ``x-request-id: <request_id>`` (the client's id)."""
    return tab.locator(f'#feed tr[data-client-request-id="{request_id}"]')


def tile_value(tab: Page, key: str):
    return tab.locator(f'[data-tile="{key}"] .tile-value')


def request_headers(request_id: str, user_agent: str | None = None) -> dict[str, str]:
    return {"x-request-id": request_id, "User-Agent": user_agent or f"dashboard-test/{request_id}"}


def send_anthropic(
    proxy_url: str, request_id: str, stream: bool = False, model: str = ANTHROPIC_MODEL, **headers
) -> None:
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


@contextlib.contextmanager
def launched_browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright (``playwright install`` is never needed)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=tool_path("chromium"), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@contextlib.contextmanager
def dashboard_with_stream_route(browser: Browser, proxy_url: str, handler: Callable[[Any], None]) -> Iterator[Page]:
    """The dashboard in a fresh context whose ``/logs/stream`` requests go to ``handler`` (a Playwright route
    handler: it may answer them itself, as a proxy in front would, or let them through)."""
    context = browser.new_context()
    try:
        context.route("**/logs/stream*", handler)
        tab = context.new_page()
        tab.goto(f"{proxy_url}/dashboard")
        yield tab
    finally:
        context.close()


@contextlib.contextmanager
def dashboard_opener(browser: Browser) -> Iterator[Callable[[str], tuple[Page, PageProblems]]]:
    """Open pages in fresh browser contexts; every context is closed on exit.

    (An open page holds a /logs/stream connection, and a proxy waits for it when stopping.)
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

    try:
        yield open_page
    finally:
        for context in contexts:
            context.close()
