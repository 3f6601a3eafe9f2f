"""Claude Code's warm-up and connectivity check, ``HEAD /api/hello`` under its base URL, reaches
Anthropic as it was sent and is recorded as a free call of Anthropic's, not a 404 of ccproxy's."""

from __future__ import annotations

from decimal import Decimal

import httpx

from .raw_upstream import upstream_and_proxy_fixtures

HELLO = b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 19\r\n\r\n{"message":"hello"}'
upstream, proxy = upstream_and_proxy_fixtures({"": HELLO})


def test_claude_codes_head_of_api_hello_is_answered_by_anthropic(proxy, upstream, recorder):
    # As Claude Code sends it: no anthropic-version, Bun's user agent.
    answer = httpx.head(proxy.url + "/api/hello", headers={"user-agent": "Bun/1.4.6"})
    assert answer.status_code == 200
    assert upstream.received[-1].split(b"\r\n")[0] == b"GET /api/hello HTTP/1.1"  # HEAD goes as GET, as always
    [record] = recorder.wait_for_ends(1)
    assert (record.service_type, record.endpoint, record.method) == ("anthropic", "/api/hello", "HEAD")
    assert (record.status_code, record.error_type, record.cost_usd, record.priced) == (200, None, Decimal(0), True)


def test_a_get_of_api_hello_is_forwarded_too_and_other_methods_or_paths_near_it_are_not(proxy, upstream, recorder):
    assert httpx.get(proxy.url + "/api/hello").json() == {"message": "hello"}
    before = len(upstream.received)
    for method, path in [("POST", "/api/hello"), ("GET", "/hello"), ("GET", "/api/hello/x")]:
        assert httpx.request(method, proxy.url + path).status_code == 404, (method, path)
    assert len(upstream.received) == before  # none of them reached the provider
    records = recorder.wait_for_ends(4)
    assert [record.endpoint for record in records] == ["/api/hello"] + ["unmatched"] * 3
