"""Other web pages cannot use ccproxy: Host, Origin and Sec-Fetch-Site checks, CORS only when configured,
forwarding headers only from trusted proxies, the configured key never spent for a foreign page.

Every request here is sent as a browser would send it (the headers a browser adds), to a real server.
The same attacks in a real Chromium are in test_browser_cross_site.py.
"""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client

from ccproxy_core.errors import SettingsError
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.testing import wait_until
from ccproxy_core.testing.mock_upstream.recorder import redact_secret

CONFIGURED_KEY = "sk-ant-operator-configured-key"
LOGS_ON = {
    "logs_endpoints_enabled": True,
    "logs_collection_enabled": True,
    "metrics_endpoint_enabled": True,
    "dashboard_enabled": True,
    "log_flush_interval_seconds": 0.05,
}
BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
EVIL = "http://evil.example"


@pytest.fixture
def server(proxy_factory):
    return proxy_factory(observability=LOGS_ON, upstream={"anthropic_api_key": CONFIGURED_KEY})


def upstream_requests(upstream) -> list[dict]:
    return httpx.get(upstream.url + "/_mock/requests").json()["requests"]


def stored_count(url: str) -> int:
    return httpx.get(url + "/logs/status").json()["row_count"]


def fill(url: str) -> None:
    httpx.post(url + "/v1/messages", content=BODY, headers={"content-type": "application/json"})
    wait_until(lambda: stored_count(url) >= 1)


def test_a_foreign_host_is_refused_everywhere(server):
    fill(server.url)
    for path in ("/logs/query", "/logs/status", "/metrics", "/dashboard", "/v1/models"):
        response = httpx.get(server.url + path, headers={"host": "attacker.example:8000"})
        assert response.status_code == 403, path
        assert "SECURITY__ALLOWED_HOSTS" in response.text
    for host in ("localhost:1234", "127.0.0.1", "[::1]:80", "127.0.0.2", "app.localhost", "localhost.:80"):
        assert httpx.get(server.url + "/logs/status", headers={"host": host}).status_code == 200, host
    for host in ("127.0.0.1:80@evil.example", "localhost:x", "[::1]evil", "[::1]:80x"):  # no port after the name
        # Before: 200 for the first two, the name read as loopback whatever followed it.
        assert httpx.get(server.url + "/logs/status", headers={"host": host}).status_code == 403, host


def test_extra_host_names_can_be_allowed(proxy_factory):
    proxy = proxy_factory(security={"allowed_hosts": "ccproxy.internal"})
    assert httpx.get(proxy.url + "/health", headers={"host": "ccproxy.internal:8000"}).status_code == 200
    assert httpx.get(proxy.url + "/health", headers={"host": "other.internal"}).status_code == 403


def test_a_cross_site_reset_is_refused_and_wipes_nothing(server):
    fill(server.url)
    attempts = [
        {"origin": EVIL},
        {"origin": "http://127.0.0.1:9"},  # another port of the same host: another origin
        {"origin": "null"},
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"},
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "no-cors"},
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},  # a form POST
    ]
    for headers in attempts:
        response = httpx.post(server.url + "/logs/reset", headers=headers)
        assert response.status_code == 403, headers
        assert "SECURITY__ALLOWED_ORIGINS" in response.json()["detail"]
    assert stored_count(server.url) >= 1
    own_origin = httpx.post(server.url + "/logs/reset", headers={"origin": server.url, "sec-fetch-site": "same-origin"})
    assert own_origin.status_code == 200 and own_origin.json()["deleted"] >= 1


def test_own_pages_refuse_cross_site_reads_but_open_from_a_link(server):
    for path in ("/logs/query", "/metrics", "/logs/stream"):
        refused = httpx.get(server.url + path, headers={"origin": EVIL, "sec-fetch-site": "cross-site"})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers, path
    link = httpx.get(server.url + "/dashboard", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"})
    assert link.status_code in (200, 503)  # 503: bundle not built; either way not refused
    followed = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert httpx.get(server.url + "/dashboard", headers=followed).status_code in (200, 503)


def test_another_site_cannot_frame_or_prefetch_own_pages_to_hold_the_operators_stream_slots(server):
    # Before, a page framing /logs/stream a hundred times (six frames a site) left the dashboard a 503.
    for dest in ("iframe", "frame", "embed", "object"):
        for path in ("/logs/stream", "/logs/query", "/dashboard"):
            headers = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": dest}
            framed = httpx.get(server.url + path, headers=headers)
            assert framed.status_code == 403 and "SECURITY__ALLOWED_ORIGINS" in framed.json()["detail"], (dest, path)
    # A page's speculation rules prefetch with the headers of an address typed by hand, and a Sec-Purpose.
    typed = {"sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}
    assert httpx.get(server.url + "/logs/status", headers=typed).status_code == 200
    for purpose in ("prefetch", "prefetch;prerender", "prefetch;anonymous-client-ip"):
        prefetched = httpx.get(server.url + "/logs/stream", headers={**typed, "sec-purpose": purpose})
        assert prefetched.status_code == 403 and "speculative load" in prefetched.json()["detail"], purpose
    assert httpx.get(server.url + "/dashboard", headers={"purpose": "prefetch"}).status_code == 403
    assert server.app.state.browser_refusals["prefetch"] == 4
    # Hostile values: bytes that are not UTF-8 name no speculative load; a long junk value that names one does.
    junk = {"sec-purpose": b"\xff\xfe\tjunk", "sec-fetch-dest": b"\x80document"}
    assert httpx.get(server.url + "/logs/status", headers=junk).status_code == 200
    long_junk = {"sec-purpose": b"\xff" * 4000 + b"PreFetch"}
    assert httpx.get(server.url + "/logs/status", headers=long_junk).status_code == 403
    own_frame = {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe"}
    assert httpx.get(server.url + "/logs/status", headers=own_frame).status_code == 200
    assert server.app.state.browser_refusals["origin"] >= 12


def test_a_foreign_page_never_spends_the_configured_key(server, upstream):
    httpx.delete(upstream.url + "/_mock/requests")
    for headers in (
        {"origin": EVIL, "content-type": "text/plain"},
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "no-cors", "content-type": "text/plain"},
    ):
        response = httpx.post(server.url + "/v1/messages", content=BODY, headers=headers)
        assert response.status_code == 403
        assert response.json()["error"]["type"] == "permission_error"  # Anthropic-shaped
    refused = httpx.post(server.url + "/v1/chat/completions", content=BODY, headers={"origin": EVIL})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error"  # OpenAI-shaped
    assert upstream_requests(upstream) == []
    # a client that is not a browser still gets the configured key
    assert httpx.post(server.url + "/v1/messages", content=BODY).status_code == 200
    [sent] = upstream_requests(upstream)
    assert {k.lower(): v for k, v in sent["headers"]}["x-api-key"] == redact_secret(CONFIGURED_KEY)


def test_a_foreign_page_cannot_open_a_websocket_with_the_configured_key(proxy_factory, upstream, caplog):
    server = proxy_factory(upstream={"openai_api_key": "sk-operator-configured-openai-key"})
    caplog.set_level(logging.INFO)
    socket_url = server.url.replace("http://", "ws://") + "/v1/responses"
    httpx.delete(upstream.url + "/_mock/requests")
    port = int(server.url.rsplit(":", 1)[1])
    # A rebinding page's socket names its own host: sent to ccproxy's address, with that Host header.
    for url, headers in ((socket_url, {"origin": EVIL}), (f"ws://rebind.evil.example:{port}/v1/responses", {})):
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            websockets.sync.client.connect(url, sock=sock, additional_headers=headers, open_timeout=10)
        response = refused.value.response
        assert response.status_code == 403
        assert json.loads(response.body)["error"]["type"] == "permission_error", headers
    assert upstream_requests(upstream) == []
    # Refused as the refusal log says (rate limited), not as an application error per socket: before,
    # uvicorn wrote "ASGI callable returned without completing handshake" at ERROR for each one.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    # ccproxy's own pages (same origin) and clients that are not browsers still connect.
    for headers in ({"origin": server.url}, {}):
        with websockets.sync.client.connect(socket_url, additional_headers=headers, open_timeout=10):
            pass
    assert len(upstream_requests(upstream)) == 2


def test_allowed_origins_get_cors_and_others_none(proxy_factory):
    app_origin = "http://app.example:3000"
    proxy = proxy_factory(observability=LOGS_ON, security={"allowed_origins": app_origin})
    preflight = httpx.options(
        proxy.url + "/v1/messages",
        headers={
            "origin": app_origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type,x-api-key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == app_origin
    assert preflight.headers["access-control-allow-headers"] == "content-type,x-api-key"
    allowed = httpx.post(
        proxy.url + "/v1/messages",
        content=BODY,
        headers={"origin": app_origin, "content-type": "application/json", "x-api-key": "k"},
    )
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == app_origin
    plain = httpx.get(proxy.url + "/logs/status")
    assert "access-control-allow-origin" not in plain.headers
    assert httpx.get(proxy.url + "/logs/status", headers={"origin": EVIL}).status_code == 403


def test_any_origin_may_call_the_providers_but_not_read_or_reset_the_records(proxy_factory):
    proxy = proxy_factory(observability=LOGS_ON, security={"allowed_origins": "*"})
    headers = {"origin": EVIL, "content-type": "application/json", "x-api-key": "k"}
    allowed = httpx.post(proxy.url + "/v1/messages", content=BODY, headers=headers)
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == EVIL
    for method, path in (("GET", "/logs/query"), ("GET", "/metrics"), ("POST", "/logs/reset")):
        refused = httpx.request(method, proxy.url + path, headers={"origin": EVIL})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
        assert "covers the provider routes only" in refused.json()["detail"]
    preflight = httpx.options(
        proxy.url + "/logs/reset", headers={"origin": EVIL, "access-control-request-method": "POST"}
    )
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers


def test_forwarded_for_is_believed_only_from_trusted_proxies(proxy_factory, recorder):
    untrusted = proxy_factory(plugins=[recorder])
    httpx.post(
        untrusted.url + "/v1/messages", content=BODY, headers={"x-forwarded-for": "203.0.113.9", "x-api-key": "k"}
    )
    assert recorder.wait_for_ends(1)[-1].client_ip == "127.0.0.1"
    trusted = proxy_factory(plugins=[recorder], security={"trusted_proxies": "127.0.0.1"})
    httpx.post(trusted.url + "/v1/messages", content=BODY, headers={"x-forwarded-for": "203.0.113.9", "x-api-key": "k"})
    assert recorder.wait_for_ends(2)[-1].client_ip == "203.0.113.9"


def test_an_empty_token_is_refused_at_start_up(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECURITY__AUTH_TOKEN", "")
    with pytest.raises(SettingsError, match=r"SECURITY__AUTH_TOKEN=.*empty"):
        load_settings()
    monkeypatch.setenv("SECURITY__AUTH_TOKEN", "   ")
    with pytest.raises(SettingsError, match="SECURITY__AUTH_TOKEN"):
        load_settings()


def test_an_empty_or_raw_token_cookie_lets_nobody_in(proxy_factory):
    proxy = proxy_factory(observability=LOGS_ON, security={"auth_token": "t0ken-t0ken"})
    port = proxy.url.rsplit(":", 1)[1]
    for cookie in (
        "ccproxy_token=",
        f"ccproxy_session_{port}=",
        "ccproxy_session=",
        f"ccproxy_session_{port}=t0ken-t0ken",
    ):
        assert httpx.get(proxy.url + "/logs/status", headers={"cookie": cookie}).status_code == 401, cookie
    assert httpx.get(proxy.url + "/logs/status", headers={"authorization": "Bearer"}).status_code == 401


def test_the_session_cookie_is_never_forwarded(proxy_factory, upstream):
    proxy = proxy_factory(observability=LOGS_ON, security={"auth_token": "t0ken-t0ken"})
    with httpx.Client(base_url=proxy.url) as browser:
        assert browser.get("/dashboard?token=t0ken-t0ken").status_code == 303
        [name] = list(browser.cookies)
        session = browser.cookies[name]
        assert browser.get("/logs/status").status_code == 200
        httpx.delete(upstream.url + "/_mock/requests")
        browser.post("/v1/messages", content=BODY, headers={"x-api-key": "k", "cookie": f"{name}={session}; other=1"})
    [sent] = upstream_requests(upstream)
    cookies = [v for k, v in sent["headers"] if k.lower() == "cookie"]
    assert cookies == [
        redact_secret("other=1")
    ]  # the rest of the client's cookies still go through (recorded redacted)
    assert not any(session in value or "t0ken-t0ken" in value for _, value in sent["headers"])
