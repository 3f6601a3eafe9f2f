"""Requests that would reach another host, or hide a second request, are refused before anything is forwarded."""

from __future__ import annotations

import gzip
import json
import socket

import pytest

from .raw_upstream import json_answer, raw_upstream

MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
BODY = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
OPERATOR_KEY = "sk-ant-operator-0123456789abcdef"
UPGRADE = b"connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: MDEyMzQ1Njc4OWFiY2RlZg==\r\n"


@pytest.fixture
def provider():
    with raw_upstream({"message": json_answer(b"200 OK", MESSAGE)}) as server:
        yield server


@pytest.fixture
def elsewhere():
    """A host a client would like the key sent to: it only counts who connects."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    yield listener
    listener.close()


@pytest.fixture
def proxy(proxy_factory, recorder, provider):
    return proxy_factory(upstream_url=provider.url, plugins=[recorder], upstream={"anthropic_api_key": OPERATOR_KEY})


def exchange(proxy, *parts: bytes) -> bytes:
    """Send ``parts`` on one connection, a moment apart, and read until ccproxy closes it."""
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        for part in parts:
            client.sendall(part)
            client.settimeout(0.3)
            try:
                answer = client.recv(65536)
            except TimeoutError:
                answer = b""
            client.settimeout(10)
            if answer:
                break
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def request(path: str, body: str = BODY, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nx-raw: message\r\n"
    return f"{head}anthropic-version: 2023-06-01\r\ncontent-length: {len(body)}\r\n{extra}\r\n{body}".encode()


@pytest.mark.parametrize("prefix", ["/api%2Fv1%2F@", "/api%2fv1%2f@", "/api/%2Fv1/@"])
def test_a_path_encoded_to_name_another_host_is_not_forwarded(proxy, recorder, elsewhere, prefix):
    """``/api%2Fv1%2F@host/messages`` decodes to an API path; after the base URL, as sent, it names ``host``."""
    host, port = elsewhere.getsockname()
    answer = exchange(proxy, request(f"{prefix}{host}:{port}/messages", extra="connection: close\r\n"))
    assert answer.startswith(b"HTTP/1.1 404") and b"percent-encoded slash" in answer
    with pytest.raises(BlockingIOError):
        elsewhere.accept()  # nobody came: not the request, not the operator's key
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (404, "not_found", None)


def test_an_api_path_under_the_api_prefix_is_still_forwarded(proxy, recorder):
    answer = exchange(proxy, request("/api/v1/messages", extra="connection: close\r\n"))
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(MESSAGE)
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.status_code, record.tokens_output) == ("/v1/messages", 200, 5)


@pytest.mark.parametrize("body_later", [True, False])
def test_an_upgrade_to_another_protocol_is_refused_and_its_body_never_read_as_a_request(proxy, recorder, body_later):
    """A server that does not switch must not read the body as a new request: it would run unseen by a proxy in front."""
    smuggled = request("/v1/messages?smuggled", extra="connection: close\r\n").decode()
    head, _, body = request(
        "/v1/messages", smuggled, "connection: Upgrade, HTTP2-Settings\r\nupgrade: h2c\r\n"
    ).partition(b"\r\n\r\n")
    parts = (head + b"\r\n\r\n", body) if body_later else (head + b"\r\n\r\n" + body,)
    answer = exchange(proxy, *parts)
    assert answer.count(b"HTTP/1.1 ") == 1 and answer.startswith(b"HTTP/1.1 400")
    assert "Upgrade: h2c" in json.loads(answer.partition(b"\r\n\r\n")[2])["detail"]
    assert recorder.wait_for_ends(0) == []  # nothing forwarded: neither request reached the provider


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/messages HTTP/1.1\r\nhost: evil.example\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{}",
        b"GET /v1/responses HTTP/1.1\r\nhost: evil.example\r\nhost: 127.0.0.1\r\n" + UPGRADE + b"\r\n",
    ],
)
def test_a_second_host_header_is_refused(proxy, recorder, provider, head):
    answer = exchange(proxy, head)
    assert answer.startswith(b"HTTP/1.1 400") and b"more than one Host header" in answer
    assert provider.received == []


def test_trailer_fields_are_not_forwarded_as_headers(proxy, recorder, provider):
    """A trailer must not pass for a header: here one would replace the operator's key with the client's choice."""
    body = BODY.encode()
    head = request("/v1/messages", extra="transfer-encoding: chunked\r\nconnection: close\r\n").partition(b"\r\n\r\n")[
        0
    ]
    head = head.replace(f"content-length: {len(BODY)}\r\n".encode(), b"")
    chunked = b"%x\r\n%s\r\n0\r\nx-api-key: sk-ant-from-a-trailer\r\nx-from-trailer: 1\r\n\r\n" % (len(body), body)
    answer = exchange(proxy, head + b"\r\n\r\n" + chunked)
    assert answer.startswith(b"HTTP/1.1 200")
    [sent] = provider.received
    assert f"x-api-key: {OPERATOR_KEY}".encode() in sent
    assert b"trailer" not in sent


def test_headers_the_connection_header_names_and_a_content_type_never_sent_do_not_reach_the_provider(
    proxy, recorder, provider
):
    head = request("/v1/messages", extra="connection: close, x-hop-secret\r\nx-hop-secret: s3cret\r\n")
    answer = exchange(proxy, head.replace(b"content-type: application/json\r\n", b""))
    assert answer.startswith(b"HTTP/1.1 200")
    [sent] = provider.received
    assert b"x-hop-secret" not in sent.lower() and b"content-type" not in sent.lower()


def test_a_key_the_connection_header_names_is_still_the_clients_own(proxy, recorder, provider):
    """Left out as hop-by-hop, it would be replaced by the operator's key, while the record names the client's."""
    head = request("/v1/messages", extra="x-api-key: sk-ant-client-0123456789\r\nconnection: close, x-api-key\r\n")
    assert exchange(proxy, head).startswith(b"HTTP/1.1 200")
    [sent] = provider.received
    assert b"x-api-key: sk-ant-client-0123456789" in sent and OPERATOR_KEY.encode() not in sent


def test_every_connection_header_line_names_hop_by_hop_headers(proxy, recorder, provider):
    extra = "connection: close\r\nconnection: x-hop\r\nx-hop: 1\r\n"
    assert exchange(proxy, request("/v1/messages", extra=extra)).startswith(b"HTTP/1.1 200")
    [sent] = provider.received
    assert b"x-hop" not in sent


@pytest.mark.parametrize(
    ("head", "why"),
    [
        (b"POST /v1/messages HTTP/1.1\r\ncontent-length: 2\r\n\r\n{}", b"needs a Host header"),
        # Before, both were forwarded with the operator's key, the first past the Host check as HTTP/0.9.
        (b"POST /v1/messages\r\n\r\n", b"says HTTP/0.9"),
        (b"POST /v1/messages HTTP/2.0\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\n\r\n{}", b"says HTTP/2.0"),
        (
            b"GET /v1/responses HTTP/1.1\r\nhost: 127.0.0.1\r\n" + UPGRADE + b"content-length: 20\r\n\r\n"
            b"GET /v1/models HTTP/1.1\r\n",
            b"carries no body",
        ),
    ],
)
def test_a_head_without_host_or_an_upgrade_with_a_body_is_refused(proxy, recorder, provider, head, why):
    answer = exchange(proxy, head)
    assert answer.startswith(b"HTTP/1.1 400") and why in answer
    assert provider.received == []


def test_a_refused_head_pipelined_behind_a_request_waits_for_its_answer(proxy, recorder, provider):
    """Answers go in request order: the refusal must not cut the answer the first request is owed."""
    refused = b"GET /v1/models HTTP/1.1\r\ncontent-length: 0\r\n\r\n"  # no Host
    answer = exchange(proxy, request("/v1/messages") + refused)
    first, _, rest = answer.partition(MESSAGE)
    assert first.startswith(b"HTTP/1.1 200") and rest.startswith(b"HTTP/1.1 400") and b"Host header" in rest
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 5)


def test_a_transfer_coding_other_than_chunked_is_refused(proxy, recorder, provider):
    body = gzip.compress(BODY.encode())
    head = request("/v1/messages", extra="transfer-encoding: gzip, chunked\r\n").partition(b"\r\n\r\n")[0]
    head = head.replace(f"content-length: {len(BODY)}\r\n".encode(), b"")
    answer = exchange(proxy, head + b"\r\n\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert answer.startswith(b"HTTP/1.1 400") and b"chunked only" in answer
    assert provider.received == []


def test_a_connect_request_is_told_ccproxy_is_no_forward_proxy(proxy, recorder):
    answer = exchange(proxy, b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nhost: api.anthropic.com:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    assert "no forward proxy" in json.loads(answer.partition(b"\r\n\r\n")[2])["detail"]  # before: "(Upgrade: )"
    assert recorder.wait_for_ends(0) == []
