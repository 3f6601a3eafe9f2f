"""Raw HTTP through a real ccproxy: forwarding, local errors, disconnects, hook isolation."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest
from multidict import CIMultiDict
from pydantic import SecretStr

from ccproxy_core import hookimpl
from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.forwarding import hang_up_watch
from ccproxy_core.forwarding.upstream import unsendable_request
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.testing import make_settings, wait_until
from ccproxy_core.testing.mock_upstream.recorder import redact_secret

ANTHROPIC_HEADERS = {
    "x-api-key": "sk-ant-forward-me",
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "tools-2024",
    "content-type": "application/json",
}
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": [{"role": "user", "content": "hello there"}]}


def mock_requests(upstream) -> list[dict]:
    return httpx.get(upstream.url + "/_mock/requests").json()["requests"]


def test_body_query_and_headers_reach_the_provider_unchanged(proxy, upstream, recorder):
    httpx.delete(upstream.url + "/_mock/requests")
    raw = b'{"model":"claude-sonnet-4-6",  "max_tokens":50,"messages":[{"role":"user","content":"h\\u00e9"}]}'
    response = httpx.post(
        proxy.url + "/v1/messages?beta=true", content=raw, headers={**ANTHROPIC_HEADERS, "x-request-id": "given-id-1"}
    )
    assert response.status_code == 200
    assert response.headers["request-id"].startswith("req_01")  # the provider's id, unchanged
    assert float(response.headers["x-ccproxy-overhead-ms"]) >= 0
    [seen] = mock_requests(upstream)
    assert seen["body"] == raw.decode()
    assert (seen["path"], seen["query"]) == ("/v1/messages", "beta=true")
    headers = {k.lower(): v for k, v in seen["headers"]}
    assert headers["x-api-key"] == redact_secret(ANTHROPIC_HEADERS["x-api-key"])
    for name in ("anthropic-version", "anthropic-beta", "content-type"):
        assert headers[name] == ANTHROPIC_HEADERS[name]
    [record] = recorder.wait_for_ends(1)
    assert record.client_request_id == "given-id-1" and record.query == "beta=true"
    assert recorder.starts[0].client_request_id == "given-id-1"  # plugins see it from the start
    assert record.upstream_request_id == response.headers["request-id"]
    assert record.request_id == response.headers["x-ccproxy-request-id"] != "given-id-1"


def test_the_provider_gets_no_header_the_client_did_not_send(proxy, upstream):
    # aiohttp adds Accept, Accept-Encoding and User-Agent of its own; a client that sends none of them
    # (a raw GET) must reach the provider without them, as it would direct.
    httpx.delete(upstream.url + "/_mock/requests")
    host, port = proxy.url.removeprefix("http://").split(":")
    head = b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: sk-ant-k\r\nanthropic-version: 2023-06-01\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(head)
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
    [seen] = mock_requests(upstream)
    names = {name.lower() for name, _ in seen["headers"]}
    assert names - {"host", "content-length"} == {"x-api-key", "anthropic-version"}


@pytest.mark.parametrize("header", ["api-key", "x-goog-api-key"])
def test_a_client_key_in_any_credential_header_keeps_the_configured_key_out(proxy_factory, upstream, recorder, header):
    """AzureOpenAI sends ``api-key``, Google-style clients ``x-goog-api-key``."""
    proxy = proxy_factory(plugins=[recorder], upstream={"openai_api_key": "sk-proj-operator-0123456789"})
    httpx.delete(upstream.url + "/_mock/requests")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(proxy.url + "/v1/chat/completions", json=body, headers={header: "client-own-key-0123456789"})
    assert answer.status_code == 200
    [seen] = mock_requests(upstream)
    sent = {k.lower(): v for k, v in seen["headers"]}
    assert "authorization" not in sent and sent[header] == redact_secret("client-own-key-0123456789")
    [record] = recorder.wait_for_ends(1)
    assert record.api_key_id == key_fingerprint("client-own-key-0123456789")


def test_a_configured_key_that_cannot_be_sent_is_not_blamed_on_the_client(proxy_factory, upstream, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream={"anthropic_api_key": "sk-ant-operator-0123456789"})
    # Start-up refuses such a key; settings made without validation (model_construct) can still hold one.
    proxy.app.state.settings.upstream.anthropic_api_key = SecretStr("sk-ant-operator-0123456789\n")
    keyless = httpx.post(proxy.url + "/v1/messages", json=BODY, headers={"anthropic-version": "2023-06-01"})
    assert keyless.status_code == 500
    assert keyless.json()["error"]["type"] == "api_error"
    assert "UPSTREAM__ANTHROPIC_API_KEY cannot be sent" in keyless.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (500, "ccproxy_misconfigured")
    # A client with its own key does not use the setting, and is served.
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC_HEADERS).status_code == 200


def test_a_header_of_the_clients_that_cannot_be_sent_is_the_clients_error():
    provider = PROVIDERS["anthropic"]
    settings = make_settings("http://127.0.0.1:9", upstream={"anthropic_api_key": "sk-ant-operator-0123456789"})
    headers = CIMultiDict({"x-api-key": "sk-ant-client\x01"})
    status, error_type, message = unsendable_request(ValueError("control character"), headers, provider, settings)
    assert (status, error_type) == (400, "invalid_request") and "this request" in message


def test_non_ascii_header_bytes_reach_the_provider_unchanged(proxy, upstream, recorder):
    httpx.delete(upstream.url + "/_mock/requests")
    utf8 = "café ✓".encode()
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers={**ANTHROPIC_HEADERS, "x-custom": utf8})
    assert response.status_code == 200
    [seen] = mock_requests(upstream)
    assert {k.lower(): v for k, v in seen["headers"]}["x-custom"].encode("latin-1") == utf8  # the recorder: latin-1


def test_a_header_that_is_not_utf8_is_refused_naming_it(proxy, upstream, recorder):
    """aiohttp sends header text as UTF-8: such bytes could not reach the provider unchanged."""
    httpx.delete(upstream.url + "/_mock/requests")
    headers = {**ANTHROPIC_HEADERS, "x-custom": b"caf\xe9"}
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"  # Anthropic-shaped
    assert "x-custom header is not valid UTF-8" in response.json()["error"]["message"]
    assert mock_requests(upstream) == []
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (400, "invalid_request", None)


def test_a_key_header_sent_twice_is_refused_naming_it(proxy, upstream, recorder):
    """Which of two keys the provider bills is unknown, and the record would name one of them."""
    httpx.delete(upstream.url + "/_mock/requests")
    headers = [*ANTHROPIC_HEADERS.items(), ("x-api-key", "sk-ant-other-key-0000")]
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=headers)
    assert response.status_code == 400  # before: forwarded with both, recorded under the first
    assert "x-api-key header was sent more than once" in response.json()["error"]["message"]
    assert "sk-ant-other" not in response.text and mock_requests(upstream) == []
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (400, "invalid_request", None)


def test_a_websocket_upgrade_with_a_header_that_is_not_utf8_is_refused(proxy, upstream, recorder):
    httpx.delete(upstream.url + "/_mock/requests")
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        client.sendall(
            b"GET /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n"
            b"authorization: Bearer sk-test\r\nx-custom: caf\xe9\r\n\r\n"
        )
        answer = client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400") and b"x-custom header is not valid UTF-8" in answer
    assert mock_requests(upstream) == []
    [record] = recorder.wait_for_ends(1)
    assert (record.method, record.status_code, record.error_type) == ("WEBSOCKET", 400, "invalid_request")


def test_generated_request_id_matches_record(proxy, recorder):
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC_HEADERS)
    [record] = recorder.wait_for_ends(1)
    assert response.headers["x-ccproxy-request-id"] == record.request_id and len(record.request_id) >= 16
    assert record.client_request_id is None


def test_rate_limit_headers_pass_back_and_are_recorded(proxy, recorder):
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC_HEADERS)
    [record] = recorder.wait_for_ends(1)
    remaining = response.headers["anthropic-ratelimit-requests-remaining"]
    assert record.rate_limits["requests_remaining"] == float(remaining)


def test_a_rate_limited_answer_keeps_its_retry_after_and_the_record_notes_it(proxy, recorder):
    headers = {**ANTHROPIC_HEADERS, "x-mock-status": "429", "x-mock-retry-after": "7"}
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=headers)
    [record] = recorder.wait_for_ends(1)
    assert (response.status_code, response.headers["retry-after"]) == (429, "7")
    assert (record.status_code, record.error_type) == (429, "rate_limit_error")
    assert record.rate_limits["retry_after_seconds"] == 7.0


def test_non_json_body_is_forwarded_and_provider_answer_passed_back(proxy, upstream, recorder):
    response = httpx.post(proxy.url + "/v1/messages", content=b"this is not json", headers=ANTHROPIC_HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    [record] = recorder.wait_for_ends(1)
    assert record.model is None and record.status_code == 400 and record.error_type == "invalid_request_error"


def test_body_over_the_limit_is_refused_with_413(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"max_request_bytes": 2048})
    response = httpx.post(proxy.url + "/v1/messages", content=b"x" * 5000, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 413
    assert "SERVER__MAX_REQUEST_BYTES" in response.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 413 and record.error_type == "request_too_large"
    assert (record.cost_usd, record.priced) == (0, True)  # never sent: nothing the provider could bill


def test_a_path_outside_the_provider_apis_is_a_json_404_and_recorded(proxy, recorder, upstream):
    upstream.clear_requests()
    response = httpx.get(proxy.url + "/nothing/here", headers={"authorization": "Bearer sk-x"})
    assert response.status_code == 404 and "/v1/" in response.json()["error"]["message"]
    [record] = recorder.wait_for_ends(1)
    assert record.endpoint == "unmatched" and record.status_code == 404 and record.upstream_status is None
    assert upstream.requests() == []


def test_paths_under_ccproxys_own_endpoints_and_the_favicon_are_not_recorded(proxy_factory, recorder):
    # Any web page may send the operator's browser to /logs/<anything>?<its text>: that must not add records.
    proxy = proxy_factory(plugins=[recorder], observability={"logs_endpoints_enabled": True})
    navigation = {"sec-fetch-mode": "navigate", "sec-fetch-site": "cross-site"}
    for path in ("/logs/nothing?injected=1", "/health/x", "/dashboard/x"):
        response = httpx.get(proxy.url + path, headers=navigation)
        assert response.status_code == 404 and "detail" in response.json(), path  # ccproxy's, not a provider's
    for path in ("/favicon.ico", "/robots.txt", "/.well-known/appspecific/com.chrome.devtools.json"):
        assert httpx.get(proxy.url + path, headers={"sec-fetch-site": "same-origin"}).status_code == 404
    head, get = httpx.head(proxy.url + "/logs/query"), httpx.get(proxy.url + "/logs/query")
    assert head.status_code == get.status_code == 503  # served as its GET: no store is collecting
    httpx.get(proxy.url + "/nothing/here")  # a client that lost its way is still recorded
    [record] = recorder.wait_for_ends(1)
    assert record.path == "/nothing/here"


@pytest.mark.parametrize(
    "path, setting",
    [
        ("/metrics", "OBSERVABILITY__METRICS_ENDPOINT_ENABLED"),
        ("/logs/query", "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED"),
        ("/dashboard", "OBSERVABILITY__DASHBOARD_ENABLED"),
    ],
)
def test_own_endpoints_that_are_off_name_their_setting_and_are_not_proxied(proxy, recorder, path, setting):
    response = httpx.get(proxy.url + path)
    assert response.status_code == 404 and setting in response.json()["detail"]
    assert recorder.starts == []


def test_health_is_not_a_proxied_request(proxy, recorder):
    body = httpx.get(proxy.url + "/health").json()
    assert body["status"] == "ok" and "version" in body
    checked = httpx.head(proxy.url + "/health")  # as some load balancers and uptime monitors check
    assert (checked.status_code, checked.content) == (200, b"")
    assert recorder.starts == []


def test_models_route_picks_provider_by_headers(proxy, recorder):
    anthropic_list = httpx.get(proxy.url + "/v1/models", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    openai_list = httpx.get(proxy.url + "/v1/models", headers={"authorization": "Bearer k"})
    assert anthropic_list.status_code == openai_list.status_code == 200
    records = recorder.wait_for_ends(2)
    assert [r.service_type for r in records] == ["anthropic", "openai"]
    assert {r.endpoint for r in records} == {"/v1/models"}


def test_upstream_timeout_gives_504(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream={"read_timeout_seconds": 0.3})
    response = httpx.post(
        proxy.url + "/v1/messages", json=BODY, headers={**ANTHROPIC_HEADERS, "x-mock-latency-ms": "2000"}, timeout=10
    )
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    # The operator's fix is named: before, "no answer from anthropic in time".
    assert response.json()["error"]["message"] == "no answer from anthropic within UPSTREAM__READ_TIMEOUT_SECONDS"
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_timeout"


def test_client_disconnect_mid_stream_is_recorded_once_and_closes_upstream(proxy, upstream, recorder):
    disconnects_before = upstream.stats()["client_disconnects"]
    slow = {**ANTHROPIC_HEADERS, "x-mock-delta-count": "200", "x-mock-delta-interval-ms": "50"}
    with httpx.Client(timeout=10) as client:
        with client.stream("POST", proxy.url + "/v1/messages", json={**BODY, "stream": True}, headers=slow) as response:
            first = next(response.iter_bytes())
            assert b"message_start" in first
    [record] = recorder.wait_for_ends(1)
    assert record.status_code == 499 and record.error_type == "client_disconnected"
    # The whole stream would take 10 s; the record came as soon as the client left.
    assert record.duration_ms < 5000 and record.tokens_input is not None
    # ccproxy hung up on the provider too, instead of reading the rest of the stream.
    wait_until(lambda: upstream.stats()["client_disconnects"] == disconnects_before + 1)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_just_before_the_answer_is_a_499_with_the_answers_cost(
    proxy, recorder, stream, monkeypatch
):
    # The answer comes before ccproxy notices the hang-up (it watches only waits longer than this).
    monkeypatch.setattr(hang_up_watch, "WATCH_AFTER_SECONDS", 5.0)
    body = json.dumps({**BODY, "stream": stream}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in {**ANTHROPIC_HEADERS, "x-mock-latency-ms": "800"}.items())
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            + head.encode()
            + b"content-length: %d\r\n\r\n" % len(body)
            + body
        )
        time.sleep(0.3)  # gone before the provider answers
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.response_bytes) == (499, "client_disconnected", 0)
    if not stream:  # the provider answered whole, and bills it: its usage and cost are kept
        assert record.tokens_input and record.cost_usd > 0 and record.upstream_status == 200


def test_upstream_abort_mid_stream_cuts_the_client_and_is_recorded(proxy, recorder):
    headers = {**ANTHROPIC_HEADERS, "x-mock-abort-after": "3"}
    with pytest.raises(httpx.HTTPError):
        with httpx.stream(
            "POST", proxy.url + "/v1/messages", json={**BODY, "stream": True}, headers=headers
        ) as response:
            for _ in response.iter_bytes():
                pass
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_stream_aborted" and record.tokens_input is not None


def test_malformed_json_from_upstream_is_passed_back_and_flagged(proxy, recorder):
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers={**ANTHROPIC_HEADERS, "x-mock-malformed": "1"})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    [record] = recorder.wait_for_ends(1)
    assert record.error_type == "upstream_invalid_json"


class Exploding:
    @hookimpl
    def on_request_start(self, context):
        raise RuntimeError("boom at start")

    @hookimpl
    def on_request_end(self, context, record):
        raise RuntimeError("boom at end")


def test_a_raising_plugin_changes_nothing_for_the_client(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[Exploding(), recorder])
    response = httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200 and response.json()["usage"]["output_tokens"] > 0
    assert len(recorder.wait_for_ends(1)) == 1
    errors = proxy.app.state.hook_errors
    assert [count for (plugin, hook), count in errors.items() if hook == "on_request_start"] == [1]
    assert [count for (plugin, hook), count in errors.items() if hook == "on_request_end"] == [1]


class AsyncObserver:
    def __init__(self):
        self.seen = []

    @hookimpl
    async def on_request_end(self, record):
        self.seen.append(record.status_code)


def test_async_hook_implementations_are_awaited(proxy_factory):
    observer = AsyncObserver()
    proxy = proxy_factory(plugins=[observer])
    httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC_HEADERS)
    assert wait_until(lambda: observer.seen) == [200]


def test_count_tokens_is_proxied_under_its_own_endpoint(proxy, recorder):
    response = httpx.post(proxy.url + "/api/v1/messages/count_tokens", json=BODY, headers=ANTHROPIC_HEADERS)
    assert response.status_code == 200 and response.json()["input_tokens"] > 0
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.path, record.service_type) == (
        "/v1/messages/count_tokens",
        "/api/v1/messages/count_tokens",
        "anthropic",
    )


def test_the_cost_the_provider_reports_is_recorded_beside_ours(proxy, recorder):
    httpx.post(proxy.url + "/v1/messages", json=BODY, headers={**ANTHROPIC_HEADERS, "x-mock-cost-usd": "0.0125"})
    [record] = recorder.wait_for_ends(1)
    assert (
        str(record.cost_sdk_usd) == "0.0125" and record.cost_usd is not None and record.cost_usd != record.cost_sdk_usd
    )
