"""Request bodies that arrive slowly, or stall: the record times them from arrival, and none holds on for ever.

A client may pause while sending its body (a slow uplink), trickle it a byte at a time to hold
its connection and the shared body room, or declare a small body and never send it. Against a
real uvicorn, over raw sockets.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from datetime import UTC, datetime

import httpx

from .test_server_limits import ANTHROPIC, BODY, address, read_answer

HEAD = (
    b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n"
)


def test_a_body_that_pauses_is_timed_from_the_request_s_arrival(proxy, recorder):
    body = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 100_000}]}).encode()
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(HEAD % len(body) + body[: len(body) // 2])
        sent_at = datetime.now(UTC)
        time.sleep(1.5)
        sock.sendall(body[len(body) // 2 :])
        answer = read_answer(sock, timeout=1.5)
    assert answer.startswith(b"HTTP/1.1 200")
    [record] = recorder.wait_for_ends(1)
    assert record.duration_ms >= 1500  # the client waited that long for its answer
    assert abs((record.timestamp - sent_at).total_seconds()) < 0.5  # when it arrived, not when its body ended
    assert record.proxy_overhead_ms is not None and record.proxy_overhead_ms < 1000  # the wait was not ccproxy's


def test_a_small_body_that_never_comes_gets_408_and_frees_the_connection(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"body_timeout_seconds": 1, "max_connections": 3})
    stalled = [socket.create_connection(address(proxy.url)) for _ in range(3)]
    for sock in stalled:
        sock.sendall(HEAD % 60_000 + b'{"model": ')
    answers = [read_answer(sock, timeout=10) for sock in stalled]
    for sock in stalled:
        sock.close()
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers
    assert b"SERVER__BODY_TIMEOUT_SECONDS=1" in answers[0]
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC, timeout=10).status_code == 200
    records = recorder.wait_for_ends(4)
    assert sorted(record.error_type or "" for record in records) == [
        "",
        "request_timeout",
        "request_timeout",
        "request_timeout",
    ]


def test_a_large_body_trickled_a_byte_at_a_time_gets_408_and_frees_its_room(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"body_timeout_seconds": 1, "max_buffered_body_bytes": 256 * 1024})
    started = time.monotonic()
    with socket.create_connection(address(proxy.url)) as trickler:
        trickler.sendall(HEAD % (200 * 1024))
        trickler.settimeout(0.3)
        answer = b""
        while not answer and time.monotonic() - started < 20:
            try:
                trickler.sendall(b" ")  # within the idle timeout every time, far below the minimum rate
                answer = trickler.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
    assert answer.startswith(b"HTTP/1.1 408") and b"bytes a second" in answer, answer[:300]
    assert time.monotonic() - started < 10
    # Its room is free: a body that needs all of it goes through at once.
    body = {**BODY, "messages": [{"role": "user", "content": "y" * (200 * 1024)}]}
    assert httpx.post(proxy.url + "/v1/messages", json=body, headers=ANTHROPIC, timeout=10).status_code == 200
    budget = proxy.app.state.proxy.body_budget
    assert budget.available == budget.total


def test_a_chunked_body_over_the_limit_gets_413_and_its_connection_closed(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"max_request_bytes": 200_000, "max_connections": 3})
    head = HEAD.split(b"content-length")[0] + b"transfer-encoding: chunked\r\n\r\n"
    chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
    held = [socket.create_connection(address(proxy.url)) for _ in range(3)]
    for sock in held:  # 2 MiB sent, more than ccproxy reads before its 413; no last chunk, then silence
        sock.sendall(head + chunk * 32)
    answers = [read_answer(sock, timeout=10) for sock in held]
    assert all(answer.startswith(b"HTTP/1.1 413") for answer in answers), answers
    for sock in held:  # closed by ccproxy (read_answer read up to the close): the rest is not drained for ever
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(65536) == b""
        sock.close()
    assert httpx.post(proxy.url + "/v1/messages", json=BODY, headers=ANTHROPIC, timeout=10).status_code == 200
    records = recorder.wait_for_ends(4)
    assert sorted(record.status_code for record in records) == [200, 413, 413, 413]
