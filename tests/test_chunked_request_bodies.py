"""Chunked request bodies through a real ccproxy: a flood of chunks is refused before anything after it
is read, many small chunks (JSON streamed as it is encoded) pass, and a request answered before its body
broke gets no second answer in its next request's place."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from .test_server_limits import BODY, address, messages_request, read_answer


def chunked_messages_request(body: bytes, chunk_size: int) -> bytes:
    chunks = b"".join(
        b"%x\r\n" % len(body[start : start + chunk_size]) + body[start : start + chunk_size] + b"\r\n"
        for start in range(0, len(body), chunk_size)
    )
    return (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
        b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    )


def test_a_body_in_a_flood_of_chunks_is_refused_and_recorded_and_nothing_after_it_is_read(
    proxy_factory, recorder, upstream
):
    # Before: each 1-byte chunk cost the event loop a call or two; 8 million of them held it for 3 s.
    httpx.delete(upstream.url + "/_mock/requests")
    proxy = proxy_factory(plugins=[recorder])
    body = json.dumps({**BODY, "metadata": {"user_id": "u" * 1_000_100}}).encode()
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(chunked_messages_request(body, 1) + messages_request())  # a request pipelined behind it
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"more than 1,000,000 chunks" in answer, answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1  # the one behind it never read: no answer in another's place
    (record,) = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (400, "invalid_request")
    assert httpx.get(upstream.url + "/_mock/requests").json()["count"] == 0


@pytest.mark.parametrize("chunk_size", [1, 4, 20])  # 1 to 4 bytes: JSON streamed as httpx sends json.iterencode()
def test_a_body_in_many_small_chunks_is_forwarded(proxy_factory, recorder, chunk_size):
    proxy = proxy_factory(plugins=[recorder])
    body = json.dumps({**BODY, "metadata": {"user_id": "u" * 60_000}}).encode()
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(chunked_messages_request(body, chunk_size) + messages_request())
        answer = read_answer(sock)
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer[:300]
    assert [record.status_code for record in recorder.wait_for_ends(2)] == [200, 200]


def test_a_request_answered_before_its_body_broke_gets_no_second_answer(proxy_factory, recorder):
    # Refused for its Host before its body is read; the body's framing then breaks. Before: a 400 followed
    # the 403, and the client took it for the answer to the request it had pipelined behind.
    proxy = proxy_factory(plugins=[recorder])
    body = b"".join(b"10000\r\n" + b"x" * 0x10000 + b"\r\n" for _ in range(32)) + b"zz\r\nnot a chunk\r\n"
    refused_host = chunked_messages_request(b"{}", 2).replace(b"host: 127.0.0.1", b"host: evil.example")
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(refused_host.removesuffix(b"0\r\n\r\n") + body + messages_request())
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 403 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]
