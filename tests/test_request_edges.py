"""Requests at the edges of HTTP: each is refused clearly or forwarded safely, and always recorded."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "message"}


upstream, proxy = upstream_and_proxy_fixtures({"message": json_answer(b"200 OK", MESSAGE)})


def raw_exchange(proxy, request: bytes) -> tuple[bytes, bytes]:
    """Send ``request`` as written (httpx would normalise its path) and read the answer to its close."""
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        client.sendall(request)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize(
    "path", ["/v1/../../admin/keys", "/v1/%2e%2e/%2E%2E/admin/keys", "/v1/models/..%2F..%2Fadmin", "/v1/./messages"]
)
def test_a_path_with_dot_segments_is_not_forwarded(proxy, recorder, path):
    # Forwarded, it would reach the provider outside /v1/ (and outside a base URL's path prefix).
    head, body = raw_exchange(
        proxy, f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nx-raw: message\r\nconnection: close\r\n\r\n".encode()
    )
    assert head.startswith(b"HTTP/1.1 404") and b"no . or .. segments" in body
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (404, "not_found", None)


def test_a_percent_encoded_slash_is_refused_naming_the_path_as_sent(proxy, recorder):
    # Before, the answer named the decoded path, "POST /v1/messages", the one path that works.
    head, body = raw_exchange(
        proxy, b"POST /v1%2fmessages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}"
    )
    assert head.startswith(b"HTTP/1.1 404") and b"ccproxy does not proxy POST /v1%2fmessages:" in body
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (404, "not_found", None)


@pytest.mark.parametrize(("declared", "sent"), [(1_000, 500), (1_000_000, 200_000)])
def test_a_client_that_hangs_up_while_sending_its_body_is_a_recorded_499(proxy, recorder, declared, sent):
    with socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as client:
        head = f"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: {declared}\r\n"
        client.sendall(head.encode() + b"x-api-key: k\r\ncontent-type: application/json\r\n\r\n" + b"{" * sent)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.upstream_status) == (499, "client_disconnected", None)


def test_expect_100_continue_is_answered_here_and_not_asked_of_the_provider(proxy, recorder):
    # The raw upstream, like many servers, never sends 100 Continue: asked for it, the upstream
    # client would hold the body back until its read timeout.
    headers = {**ANTHROPIC, "expect": "100-continue"}
    response = httpx.post(proxy.url + "/v1/messages", content=json.dumps(BODY), headers=headers, timeout=10)
    assert response.status_code == 200 and response.content == MESSAGE
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.tokens_output) == (200, 5)


def test_an_api_path_with_an_encoded_line_feed_is_forwarded_and_recorded(proxy, recorder):
    answer = httpx.post(proxy.url + "/v1/messages%0a/batches", json=BODY, headers=ANTHROPIC, timeout=10)
    assert answer.status_code == 200 and answer.content == MESSAGE  # the provider's answer, whatever it is
    [record] = recorder.wait_for_ends(1)
    assert (record.endpoint, record.status_code) == ("/v1/*", 200)


def test_a_websocket_upgrade_of_an_api_path_without_sockets_is_a_json_404(proxy, recorder):
    headers = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "MDEyMzQ1Njc4OWFiY2RlZg==",
    }
    answer = httpx.get(proxy.url + "/v1/messages", headers=headers, timeout=10)
    assert answer.status_code == 404 and "/v1/responses" in answer.json()["detail"]


def test_a_key_percent_encoded_in_a_refused_path_is_masked_in_the_record(proxy, recorder):
    key = "sk-proj-" + "O" * 40
    encoded = "/x%2f" + key.replace("-", "%2D") + "/v1/chat/completions"
    raw_exchange(
        proxy,
        f"POST {encoded} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {key}\r\n"
        "content-length: 2\r\nconnection: close\r\n\r\n{}".encode(),
    )
    [record] = recorder.wait_for_ends(1)
    # Before, the 404's message held the key whole, escaped as sent, in the stored record.
    assert record.status_code == 404 and "O" * 20 not in record.error_message
