"""Access: loopback by default; SECURITY__AUTH_TOKEN guards ccproxy's own endpoints, never the proxy routes.

The proxy routes carry the client's own provider credentials, which must reach the provider
unchanged, and must not be asked for ccproxy's token.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import httpx
import pytest

from ccproxy_core.runtime.report.holder import listening_addresses
from ccproxy_core.runtime.serve import exposure_warnings
from ccproxy_core.runtime.settings import ServerSettings, Settings
from ccproxy_core.testing import make_settings
from ccproxy_core.testing.mock_upstream.recorder import redact_secret
from tests.test_reliability_signals import ServeProcess

TOKEN = "ccproxy-own-token-91c2"
EVERYTHING_ON = {
    "metrics_endpoint_enabled": True,
    "logs_endpoints_enabled": True,
    "logs_collection_enabled": True,
    "dashboard_enabled": True,
    "log_flush_interval_seconds": 0.05,
}
OWN_ENDPOINTS = [
    "/metrics",
    "/logs/status",
    "/logs/query",
    "/logs/analytics",
    "/logs/entries",
    "/dashboard",
    "/dashboard/static/dashboard.js",
    "/openapi.json",  # the schema of the routes above
]
ANTHROPIC_KEY = "sk-ant-client-own-key"
OPENAI_KEY = "sk-client-own-key"
HELLO = [{"role": "user", "content": "hello"}]


def test_the_default_host_is_loopback(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith(("SERVER__", "CCPROXY_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no .env
    assert ServerSettings().host == "127.0.0.1"
    assert Settings().server.host == "127.0.0.1"


MOCK = "http://127.0.0.1:9"


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_every_interface_with_keys_and_no_guard_is_warned_about_in_one_line(host):
    exposed = make_settings(MOCK, server={"host": host}, upstream={"openai_api_key": "sk-proj-operator-0123456789"})
    [warning] = exposure_warnings(exposed)
    assert "\n" not in warning
    for name in (f"SERVER__HOST={host}", "UPSTREAM__OPENAI_API_KEY", "SECURITY__AUTH_TOKEN", "SECURITY__ALLOWED_HOSTS"):
        assert name in warning
    assert "sk-proj" not in warning and "ANTHROPIC" not in warning


@pytest.mark.parametrize(
    "sections",
    [
        {"server": {"host": "127.0.0.1"}, "upstream": {"openai_api_key": "sk-proj-operator-0123456789"}},
        {"server": {"host": "0.0.0.0"}},
        {"server": {"host": "0.0.0.0"}, "upstream": {"anthropic_api_key": "k"}, "security": {"auth_token": "t"}},
        {"server": {"host": "0.0.0.0"}, "upstream": {"anthropic_api_key": "k"}, "security": {"allowed_hosts": "a.b"}},
    ],
)
def test_no_warning_on_loopback_without_keys_or_with_a_guard(sections):
    assert exposure_warnings(make_settings(MOCK, **sections)) == []


def test_records_served_to_every_interface_without_a_token_are_warned_about():
    opened = {"logs_endpoints_enabled": True, "metrics_endpoint_enabled": True}
    exposed = make_settings(MOCK, server={"host": "0.0.0.0"}, observability=opened)
    [warning] = exposure_warnings(exposed)
    assert warning.startswith(
        "SERVER__HOST=0.0.0.0 serves every interface with OBSERVABILITY__LOGS_ENDPOINTS_ENABLED and "
        "OBSERVABILITY__METRICS_ENDPOINT_ENABLED on and no SECURITY__AUTH_TOKEN"
    )
    guarded = make_settings(MOCK, server={"host": "0.0.0.0"}, observability=opened, security={"auth_token": "t"})
    assert exposure_warnings(guarded) == []


def test_any_origin_allowed_beside_an_operator_key_is_warned_about():
    upstream = {"anthropic_api_key": "sk-ant-operator-0123456789"}
    [warning] = exposure_warnings(make_settings(MOCK, upstream=upstream, security={"allowed_origins": "*"}))
    assert warning.startswith("SECURITY__ALLOWED_ORIGINS=* with UPSTREAM__ANTHROPIC_API_KEY set: any web page")
    assert "sk-ant" not in warning
    assert exposure_warnings(make_settings(MOCK, security={"allowed_origins": "*"})) == []  # clients bring their keys


def an_address_of_this_machine_other_than_loopback() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ccproxy_serve_without_host_listens_only_on_loopback(upstream, tmp_path):
    ccproxy = Path(sys.executable).with_name("ccproxy")
    assert ccproxy.exists(), "the ccproxy console script is not installed next to this Python"
    server = ServeProcess(
        tmp_path, {"UPSTREAM__ANTHROPIC_BASE_URL": upstream.url}, command=[str(ccproxy), "serve"]
    ).start()
    try:
        assert set(listening_addresses(server.process.pid)) == {("127.0.0.1", server.port)}
        elsewhere = an_address_of_this_machine_other_than_loopback()
        if elsewhere is not None:
            with pytest.raises(OSError):  # noqa: PT011 - refused, unreachable or timed out: each means not listening there
                socket.create_connection((elsewhere, server.port), timeout=2).close()
    finally:
        server.stop()


@pytest.fixture
def guarded(proxy_factory):
    """A proxy with every plugin on and SECURITY__AUTH_TOKEN set."""
    return proxy_factory(observability=EVERYTHING_ON, security={"auth_token": TOKEN})


def test_own_endpoints_need_the_token(guarded):
    for path in OWN_ENDPOINTS:
        assert httpx.get(guarded.url + path).status_code == 401, path
        assert httpx.get(guarded.url + path, headers={"authorization": "Bearer wrong"}).status_code == 401, path
        assert httpx.get(guarded.url + path, headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200, path
    assert httpx.post(guarded.url + "/logs/reset").status_code == 401


def test_a_browser_opens_the_dashboard_with_a_token_link(guarded):
    with httpx.Client(base_url=guarded.url) as browser:
        assert browser.get("/dashboard?token=wrong").status_code == 401
        assert not browser.cookies
        link = browser.get(f"/dashboard?token={TOKEN}")
        assert link.status_code == 303 and link.headers["location"] == "/dashboard"
        cookie = link.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        port = guarded.url.rsplit(":", 1)[1]
        assert browser.cookies[f"ccproxy_session_{port}"] not in ("", TOKEN)
        page = browser.get("/dashboard")
        assert page.status_code == 200 and "dashboard.js" in page.text and TOKEN not in page.text
        # the page's own requests carry the cookie, and it opens the routes the page reads
        for path in ("/logs/analytics", "/logs/query", "/metrics"):
            assert browser.get(path).status_code == 200, path


def test_proxy_routes_pass_client_credentials_unchanged_and_ignore_the_token(guarded, upstream):
    httpx.delete(upstream.url + "/_mock/requests")
    claude = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
    gpt = {"authorization": f"Bearer {OPENAI_KEY}"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": HELLO}
    answers = [
        httpx.post(guarded.url + "/v1/messages", json=body, headers=claude),
        httpx.post(guarded.url + "/v1/messages", json={**body, "stream": True}, headers=claude),
        httpx.post(guarded.url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": HELLO}, headers=gpt),
        httpx.get(guarded.url + "/v1/models", headers=gpt),
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200]
    received = httpx.get(upstream.url + "/_mock/requests").json()["requests"]
    assert len(received) == 4
    sent = [{k.lower(): v for k, v in request["headers"]} for request in received]
    assert [headers.get("x-api-key") for headers in sent[:2]] == [redact_secret(ANTHROPIC_KEY)] * 2
    assert [headers.get("authorization") for headers in sent[2:]] == [redact_secret(f"Bearer {OPENAI_KEY}")] * 2
    token_prints = {redact_secret(TOKEN), redact_secret(f"Bearer {TOKEN}")}
    assert not token_prints & {value for headers in sent for value in headers.values()}
