"""A client that stops reading its answer but keeps the connection open: ended after SERVER__SEND_TIMEOUT_SECONDS.

Kernel buffers absorb a normal answer; a large one (here some 10 MB) fills them, and ccproxy's
write then waits on the client. Without a limit that request held its provider connection and
went unrecorded until the server stopped.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from ccproxy_core.testing import wait_until

from .raw_upstream import json_answer, raw_upstream

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}
LARGE = {"x-mock-delta-count": "100000"}  # about 10 MB of answer, streamed or whole


def send_and_never_read(url: str, body: dict, extra: dict[str, str] | None = None) -> socket.socket:
    """Send one request on a connection with a small receive buffer, and read nothing of the answer."""
    raw = json.dumps(body).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in {**HEADERS, **LARGE, **(extra or {})}.items())
    host, port = url.removeprefix("http://").split(":")
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((host, int(port)))
    client.sendall(
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        + head.encode()
        + b"content-length: %d\r\n\r\n" % len(raw)
        + raw
    )
    return client


def test_a_client_that_stops_reading_a_stream_is_cut_and_recorded(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], server={"send_timeout_seconds": 1})
    disconnects_before = upstream.stats()["client_disconnects"]
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    started = time.monotonic()
    client = send_and_never_read(proxy.url, body)
    try:
        [record] = recorder.wait_for_ends(1, timeout=30)
    finally:
        client.close()
    assert (record.status_code, record.error_type) == (499, "client_disconnected")
    assert "SERVER__SEND_TIMEOUT_SECONDS=1" in record.error_message
    assert record.upstream_status == 200 and 0 < record.response_bytes < 10_000_000
    assert time.monotonic() - started < 15  # the second or so of waiting, not the server's lifetime
    # ccproxy hung up on the provider too, instead of holding its connection.
    wait_until(lambda: upstream.stats()["client_disconnects"] == disconnects_before + 1)


def test_a_whole_answer_is_recorded_when_handed_over_not_when_read(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"send_timeout_seconds": 1})
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    client = send_and_never_read(proxy.url, body)
    try:
        [record] = recorder.wait_for_ends(1, timeout=30)  # the server's buffer holds what the client has not read
    finally:
        client.close()
    assert (record.status_code, record.error_type) == (200, None) and record.response_bytes > 500_000


@pytest.mark.parametrize("close", [False, True], ids=["kept-alive", "connection-close"])
def test_a_whole_answer_left_unread_is_dropped_with_its_connection(proxy_factory, recorder, close):
    text = "x" * (24 << 20)  # more than the kernel's buffers hold: the rest waits in the server's memory
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5"}
    message |= {"content": [{"type": "text", "text": text}], "usage": {"input_tokens": 10, "output_tokens": 20}}
    with raw_upstream({"": json_answer(b"200 OK", json.dumps(message).encode())}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url, server={"send_timeout_seconds": 1})
        body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
        client = send_and_never_read(proxy.url, body, {"connection": "close"} if close else {})
        try:
            [record] = recorder.wait_for_ends(1, timeout=30)
            time.sleep(3)  # past SERVER__SEND_TIMEOUT_SECONDS, unread
            received = read_until_closed(client)
        finally:
            client.close()
    assert (record.status_code, record.tokens_output) == (200, 20)  # handed over whole: recorded as answered
    # Before: held in the server's memory for as long as the client kept its connection, all of it to be read.
    assert received < record.response_bytes


def read_until_closed(client: socket.socket) -> int:
    """Bytes read until the server closes the connection (or resets it)."""
    client.settimeout(10)
    received = 0
    try:
        while chunk := client.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    return received


def test_a_slow_reader_that_keeps_reading_gets_the_whole_answer(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"send_timeout_seconds": 1})
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    client = send_and_never_read(proxy.url, body)
    received = 0
    try:
        while b"message_stop" not in (chunk := client.recv(65536)) and chunk:
            received += len(chunk)
            time.sleep(0.002)  # slow, but never a second without reading
        [record] = recorder.wait_for_ends(1, timeout=60)
    finally:
        client.close()
    assert (record.status_code, record.error_type) == (200, None)
    assert record.response_bytes > 10_000_000 and received > 10_000_000  # all of it passed, slowly


def test_a_client_reading_a_large_whole_answer_slowly_gets_all_of_it(proxy_factory, recorder):
    text = "x" * (10 << 20)
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5"}
    message |= {"content": [{"type": "text", "text": text}], "usage": {"input_tokens": 10, "output_tokens": 20}}
    with raw_upstream({"": json_answer(b"200 OK", json.dumps(message).encode())}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url, server={"send_timeout_seconds": 1})
        raw = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 50, "messages": []}).encode()
        host, port = proxy.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as client:
            head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
            client.sendall(
                b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
                + head.encode()
                + b"content-length: %d\r\n\r\n" % len(raw)
                + raw
            )
            [record] = recorder.wait_for_ends(1, timeout=30)
            client.settimeout(10)
            received = 0
            while chunk := client.recv(64 * 1024):  # about 1 MB a second: the kernel's megabytes drain in seconds
                received += len(chunk)
                time.sleep(0.06)
    # Before: cut once SERVER__SEND_TIMEOUT_SECONDS had passed without the kernel's send queue drained enough
    # for the server's own buffer to shrink, though the client was reading.
    assert received > record.response_bytes
