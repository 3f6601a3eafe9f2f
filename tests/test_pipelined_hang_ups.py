"""A client that pipelines requests and hangs up: the one being answered is recorded as left, not as an error."""

from __future__ import annotations

import json
import socket

import pytest

BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def messages_request(stream: bool) -> bytes:
    body = json.dumps({**BODY, "stream": stream}).encode()
    return (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
        b"x-mock-latency-ms: 800\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_request_answered_when_a_pipelining_client_hangs_up_is_recorded_as_left(proxy, recorder, stream):
    # Before, uvicorn told only the request queued behind it: the answer was written to the closed
    # connection, and the record said 200 with a proxy_error (and the server logged a traceback).
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(messages_request(stream) + messages_request(False))
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        assert sock.recv(65536) == b""
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (499, "client_disconnected")


def test_a_broken_body_pipelined_behind_a_request_is_refused_after_its_answer(proxy, recorder):
    # Before, the 400 went out at once, in place of the first request's answer, and the connection was
    # closed under it: its record blamed the client (499) for what ccproxy had done.
    broken = (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n"
        b"content-type: application/json\r\n\r\nzz\r\nabc\r\n"
    )
    host, port = proxy.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(messages_request(False) + broken)
        sock.settimeout(10)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    first, _, second = answer.partition(b"HTTP/1.1 400 ")
    assert first.startswith(b"HTTP/1.1 200 OK") and b'"type":"message"' in first, answer[:300]
    assert b"chunked framing" in second
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)
