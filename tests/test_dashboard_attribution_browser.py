"""The dashboard's breakdown selector, sessions table and session requests, in a real headless Chromium."""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.sync_api import expect

from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.testing import wait_until
from tests.dashboard_pages import ALL_LOGS_ON, TEST_OUTPUT, XSS

from .test_attribution_integration import ALICE_KEY, CODEX_KEY, claude_code_request, codex_request

pytestmark = [pytest.mark.browser]


def test_breakdowns_sessions_and_a_sessions_requests(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON, attribution={"keys": {key_fingerprint(ALICE_KEY): "alice-laptop"}})
    claude_session, codex_session = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(3):
        claude_code_request(proxy.url, claude_session)
    codex_request(proxy.url, codex_session)
    odd_sessions = ("team/alpha", "..")  # a URL path cannot carry these as they are
    for session in (XSS, *odd_sessions):
        httpx.post(
            f"{proxy.url}/v1/messages",
            headers={"x-ccproxy-project": XSS, "x-ccproxy-session": session, "x-api-key": "k"},
            json={"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        )
    stored = httpx.get(f"{proxy.url}/logs/query", params={"limit": 100}).json()
    for _ in range(100):
        if stored["count"] == 7:
            break
        stored = httpx.get(f"{proxy.url}/logs/query", params={"limit": 100}).json()
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")

    webshop = tab.locator('#by-dimension tr[data-key="webshop"] td')
    expect(webshop.nth(1)).to_have_text("3", timeout=10_000)
    expect(tab.locator("#by-dimension tr", has_text=XSS)).to_have_count(1)  # shown as text, never as markup

    tab.select_option("#breakdown-dimension", "api_key")
    expect(tab.locator("#breakdown-name")).to_have_text("Key")
    expect(tab.locator('#by-dimension tr[data-key="alice-laptop"] td').nth(1)).to_have_text("3", timeout=10_000)
    expect(tab.locator(f'#by-dimension tr[data-key="{key_fingerprint(CODEX_KEY)}"] td').nth(1)).to_have_text("1")
    tab.select_option("#breakdown-dimension", "client")
    expect(tab.locator('#by-dimension tr[data-key="codex"] td').nth(1)).to_have_text("1", timeout=10_000)
    tab.select_option("#breakdown-dimension", "session")
    expect(tab.locator(f'#by-dimension tr[data-key="{claude_session}"] td').nth(1)).to_have_text("3", timeout=10_000)

    claude_row = tab.locator(f'#sessions tr[data-session-id="{claude_session}"]')
    expect(claude_row.locator("td").nth(1)).to_have_text("claude-code")
    expect(claude_row.locator("td").nth(2)).to_have_text("webshop")
    expect(claude_row.locator("td").nth(3)).to_have_text("alice-laptop")
    expect(claude_row.locator("td").nth(5)).to_have_text("3")
    session_cost = sum(r["cost_usd"] for r in stored["results"] if r["session_id"] == claude_session)
    assert session_cost > 0
    expect(tab.locator(f'#sessions tr[data-session-id="{codex_session}"] td').nth(1)).to_have_text("codex")

    claude_row.locator("button.link").click()
    expect(tab.locator("#session-detail")).to_be_visible()
    expect(tab.locator("#session-detail-title")).to_have_text(f"Session {claude_session}")
    expect(tab.locator("#session-requests tr")).to_have_count(3)
    ids = [
        r["request_id"]
        for r in sorted(stored["results"], key=lambda r: r["timestamp"])
        if r["session_id"] == claude_session
    ]
    assert tab.locator("#session-requests tr").evaluate_all("rows => rows.map(r => r.dataset.requestId)") == ids
    expect(tab.locator("#session-requests tr").first.locator("td").nth(2)).to_have_text("claude-sonnet-4-5")
    for session in (XSS, *odd_sessions):
        tab.locator(f'#sessions tr[data-session-id="{session}"] button.link').click()
        expect(tab.locator("#session-detail-title")).to_have_text(f"Session {session}")
        expect(tab.locator("#session-requests tr[data-request-id]")).to_have_count(1)
    tab.click("#session-close")
    expect(tab.locator("#session-detail")).to_be_hidden()

    TEST_OUTPUT.mkdir(exist_ok=True)
    tab.screenshot(path=TEST_OUTPUT / "dashboard-attribution.png", full_page=True)
    problems.assert_none()


def test_a_session_longer_than_its_view_says_how_much_it_shows(open_dashboard, proxy_factory):
    proxy = proxy_factory(observability=ALL_LOGS_ON)
    session, sent = str(uuid.uuid4()), 1_001  # the view asks for the first 1,000
    body = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=proxy.url, headers={"x-ccproxy-session": session, "x-api-key": "k"}) as client:
        for _ in range(sent):
            assert client.post("/v1/messages", json=body).status_code == 200
    wait_until(lambda: [s["requests"] for s in httpx.get(f"{proxy.url}/logs/sessions").json()["sessions"]] == [sent])
    tab, problems = open_dashboard(f"{proxy.url}/dashboard")
    tab.locator(f'#sessions tr[data-session-id="{session}"] button.link').click()
    expect(tab.locator("#session-requests tr[data-request-id]")).to_have_count(1_000, timeout=10_000)
    expect(tab.locator("#session-requests tr.empty")).to_have_text(
        "Showing the first 1,000 of 1,001 requests in this window, oldest first; /logs/query?session_id= pages through them all."
    )
    problems.assert_none()
