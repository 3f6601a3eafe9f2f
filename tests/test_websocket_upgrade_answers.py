"""The provider's answer to a WebSocket upgrade it does not accept reaches the client as it was sent
(status, headers, body), and a redirect is never followed: it would take the upgrade, and the key in
its headers, wherever ``Location`` points."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest

from .raw_upstream import RESET, json_answer, raw_upstream

INVALID_KEY = json.dumps(
    {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}
).encode()
HOSTILE = b'\xff\xfe{"error": {"code": "\x1b[31m", "message": NaN}}' + b"9" * 500_000
RATE_LIMITED = json.dumps(
    {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
).encode()


@pytest.fixture
def provider():
    answers: dict[str, bytes | list[bytes | float | str]] = {
        "429": json_answer(b"429 Too Many Requests", RATE_LIMITED, b"retry-after: 20\r\nx-request-id: req_ws_429\r\n"),
        "307": json_answer(b"307 Temporary Redirect", b"", b"location: http://127.0.0.1:9/v1/responses\r\n"),
        "gzip": json_answer(b"401 Unauthorized", gzip.compress(INVALID_KEY), b"content-encoding: gzip\r\n"),
        "hostile": json_answer(b"403 Forbidden", HOSTILE),
        "reset": [RESET],
        "slow-429": [1.5, json_answer(b"429 Too Many Requests", RATE_LIMITED)],
        "600": json_answer(b"600 Beyond", RATE_LIMITED),
        "cut-429": [
            json_answer(b"429 Too Many Requests", RATE_LIMITED).replace(b"content-length: ", b"content-length: 5")
        ],
        "bad-accept": [
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
            1.0,
        ],
    }
    with raw_upstream(answers) as server:
        yield server


def upgrade(proxy, kind: str, path: str = "/v1/responses", timeout: float = 10) -> httpx.Response:
    """A WebSocket upgrade as a client sends it; its answer read as plain HTTP (a client would follow a redirect)."""
    headers = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": base64.b64encode(b"0123456789abcdef").decode(),
        "sec-websocket-protocol": "realtime, openai-insecure-api-key.sk-client-0123456789abcdef",
        "x-raw": kind,
    }
    return httpx.get(proxy.url + path, headers=headers, timeout=timeout)


def test_a_refused_upgrade_reaches_the_client_as_the_provider_sent_it(proxy_factory, recorder, provider):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answer = upgrade(proxy, "429")
    assert (answer.status_code, answer.content) == (429, RATE_LIMITED)
    assert (answer.headers["retry-after"], answer.headers["x-request-id"]) == ("20", "req_ws_429")
    [record] = recorder.wait_for_ends(1)
    assert (record.method, record.status_code, record.upstream_status) == ("WEBSOCKET", 429, 429)
    assert (record.error_type, record.upstream_request_id) == ("rate_limit_exceeded", "req_ws_429")
    assert answer.headers["x-ccproxy-request-id"] == record.request_id


def test_a_redirected_upgrade_is_passed_on_and_not_followed(proxy_factory, recorder, provider):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answer = upgrade(proxy, "307")
    assert (answer.status_code, answer.headers["location"]) == (307, "http://127.0.0.1:9/v1/responses")
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (307, 307, "http_307")


def test_an_upgrade_carries_only_the_clients_headers_and_a_compressed_refusal_is_read(
    proxy_factory, recorder, provider
):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    head = (
        "GET /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\nupgrade: websocket\r\n"
        "sec-websocket-version: 13\r\nsec-websocket-key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nx-raw: gzip\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        client.sendall(head.encode())
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < len(gzip.compress(INVALID_KEY)):
            answer += client.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401") and gzip.decompress(answer.partition(b"\r\n\r\n")[2]) == INVALID_KEY
    [record] = recorder.wait_for_ends(1)
    assert (record.error_type, record.error_message) == ("invalid_api_key", "Incorrect API key provided")
    [sent] = provider.received  # no header the client did not send: no compression it did not offer
    assert not {b"user-agent", b"accept-encoding", b"accept"} & {
        line.split(b":")[0].lower() for line in sent.split(b"\r\n")
    }


def test_a_refusal_ccproxy_makes_names_the_record(proxy_factory, recorder):
    proxy = proxy_factory(upstream_url="http://127.0.0.1:9", plugins=[recorder])  # nothing listens there
    answer = upgrade(proxy, "any")
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, record.error_type) == (502, "upstream_unreachable")
    assert answer.headers["x-ccproxy-request-id"] == record.request_id
    assert record.response_bytes == len(answer.content) > 0


def test_a_refusal_whose_body_is_no_json_reaches_the_client_unchanged_and_is_recorded_by_status(
    proxy_factory, recorder, provider
):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answer = upgrade(proxy, "hostile")
    assert (answer.status_code, answer.content) == (403, HOSTILE)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.upstream_status, record.error_type) == (403, 403, "http_403")


@pytest.mark.parametrize(
    ("kind", "upstream_status", "error_type", "said"),
    [
        # Before: "the provider refused the WebSocket upgrade with status 101", http_101, upstream_status 502.
        ("bad-accept", 101, "upstream_invalid_response", "no handshake"),
        # Before, uvicorn refused to send status 600: the client got its bare 500, the record said 600.
        ("600", 600, "upstream_invalid_status", "not an HTTP status"),
        # Before: "cannot reach openai", upstream_unreachable, though the provider had answered 429.
        ("cut-429", 429, "upstream_stream_aborted", "cut short"),
    ],
)
def test_an_upgrade_answered_with_no_valid_answer_is_a_502_with_the_providers_status(
    proxy_factory, recorder, provider, kind, upstream_status, error_type, said
):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answer = upgrade(proxy, kind)
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, answer.json()["error"]["type"]) == (502, "server_error")
    assert (record.status_code, record.upstream_status, record.error_type) == (502, upstream_status, error_type)
    assert said in record.error_message


def test_a_provider_that_resets_the_upgrade_it_read_is_not_called_unreachable(provider, proxy_factory, recorder):
    # It was reached and read the upgrade; as for HTTP requests, the record says it may have received it.
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answer = upgrade(proxy, "reset")
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, record.error_type) == (502, "upstream_disconnected")


def test_an_upgrade_whose_client_gave_up_is_abandoned_then_and_recorded_from_its_arrival(
    proxy_factory, recorder, provider
):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    sent_at = datetime.now(UTC)
    with pytest.raises(httpx.ReadTimeout):
        upgrade(proxy, "slow-429", "/v1/realtime?model=gpt-realtime", timeout=0.5)
    # Once: no record at all, and the active-requests gauge stayed at 1 for ever. Then: recorded only when the
    # provider answered, its pooled connection held until then (a provider that never answered: the read timeout).
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (499, "client_disconnected", None)
    assert record.error_message == "the client left before its upgrade was answered"
    assert record.duration_ms < 1200  # the client left at 0.5 s; the provider would have answered at 1.5 s
    assert record.model == "gpt-realtime"  # the upgrade's, as its answers have (it was null)
    assert abs((record.timestamp - sent_at).total_seconds()) < 0.5  # when it arrived, not when it ended
    assert len(recorder.starts) == 1


def test_an_upgrade_still_unanswered_when_the_server_stops_is_the_servers_cut_not_the_clients(
    proxy_factory, recorder, provider
):
    proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(upgrade(proxy, "slow-429", timeout=10)))
    client.start()
    time.sleep(0.5)  # the upgrade waits for the provider's answer (1.5 s)
    proxy.stop()
    client.join(10)
    [record] = recorder.wait_for_ends(1)
    # Before: 499 "the client left before its upgrade was answered", though the client got the server's 500.
    assert answers and answers[0].status_code == 500
    assert (record.status_code, record.error_type, record.upstream_status) == (500, "proxy_cancelled", None)


def test_subprotocols_sent_in_two_headers_are_refused_before_any_key_is_chosen(proxy_factory, recorder, provider):
    # Before, only the first header was read: the client's key in the second was dropped, the
    # operator's sent in its place, and the record named the operator's key.
    proxy = proxy_factory(
        upstream_url=provider.url, plugins=[recorder], upstream={"openai_api_key": "sk-operator-0123456789"}
    )
    head = (
        "GET /v1/realtime?model=gpt-realtime HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: Upgrade\r\n"
        "upgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"
        "sec-websocket-protocol: realtime\r\n"
        "sec-websocket-protocol: openai-insecure-api-key.sk-client-0123456789abcdef\r\nx-raw: 429\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        client.sendall(head.encode())
        answer = b""
        while not answer.endswith(b"}"):
            if not (chunk := client.recv(65536)):
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"sec-websocket-protocol header was sent more than once" in answer
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (400, "invalid_request")
    assert provider.received == []  # nothing was sent on
