"""A trusted proxy's X-Forwarded-For: whatever text it carries is the client's address, and nothing more.

uvicorn takes the header's entry as the client's host without checking it is an address. A web
page reaching ccproxy from a trusted address (a browser on the same machine, with 127.0.0.1
trusted) can set the header on a same-origin fetch after DNS rebinding.
"""

from __future__ import annotations

import httpx

from ccproxy_core.forwarding.request_parts import MAX_CLIENT_ADDRESS_CHARS, client_address
from ccproxy_core.testing import wait_until
from tests.test_reliability_signals import ANTHROPIC, BODY, serve_env
from tests.workers_load import serve_workers

FOREIGN_KEY = "sk-ant-api03-FORWARDEDFOR0123456789abcdefghijklmnop"
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def test_text_that_is_no_address_is_kept_short_escaped_and_without_keys():
    assert client_address({"client": ("203.0.113.9", 5)}) == "203.0.113.9"
    assert client_address({"client": ("2001:db8::1", 5)}) == "2001:db8::1"
    assert client_address({"client": None}) is None
    assert client_address({"client": ("unknown", 0)}) == "unknown"
    forged = client_address({"client": (f"{FOREIGN_KEY} \u202e{'x' * 200}", 0)})
    assert forged is not None and "FORWARDEDFOR" not in forged and "\u202e" not in forged
    assert forged.startswith("sk-***") and "\\u202e" in forged and len(forged) == MAX_CLIENT_ADDRESS_CHARS


def test_a_forwarded_for_entry_cannot_drop_the_host_the_hub_checks_or_put_a_key_in_the_record(upstream, tmp_path):
    env = {
        **serve_env(upstream.url, tmp_path / "hub.duckdb", metrics_endpoint_enabled="true"),
        "SECURITY__TRUSTED_PROXIES": "127.0.0.1",
    }
    server = serve_workers(tmp_path, env)
    port = server.url.rsplit(":", 1)[1]
    try:
        rebound = {"host": f"evil.example:{port}", "x-forwarded-for": f"198.51.100.7 0 127.0.0.1 {port} no-host"}
        for path in ("/metrics", "/logs/query"):
            assert httpx.get(server.url + path, headers=rebound, timeout=10).status_code == 403, path
        answer = httpx.post(
            server.url + "/v1/messages", json=BODY, headers={**ANTHROPIC, "x-forwarded-for": FOREIGN_KEY}, timeout=10
        )
        assert answer.status_code == 200
        own_key = "Zq7xGatewayToken0123456789abcdefXYZ"  # no provider's shape: masked as the request's own key
        own = {"authorization": f"Bearer {own_key}", "x-forwarded-for": own_key}
        answered = [answer, httpx.post(server.url + "/v1/chat/completions", json=CHAT, headers=own, timeout=10)]
        assert answered[1].status_code == 200

        def stored(request_id):
            rows = httpx.get(server.url + "/logs/query", params={"limit": 100}, timeout=10).json()["results"]
            return next((row for row in rows if row["request_id"] == request_id), None)

        ids = [response.headers["x-ccproxy-request-id"] for response in answered]
        assert [wait_until(lambda i=i: stored(i), timeout=15)["client_ip"] for i in ids] == ["sk-***", "***"]
    finally:
        server.stop()
