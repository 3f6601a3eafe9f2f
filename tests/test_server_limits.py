"""The server's own limits, against a real uvicorn: request head size and time, open connections, bodies."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from ccproxy_core.testing import wait_until

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
BODY = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def read_answer(sock: socket.socket, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return received


def endless_line_answer(sock: socket.socket) -> bytes:
    """Go on with the line begun on ``sock`` for 4 MiB, unless the server answers and closes first; its answer."""
    try:
        for _ in range(64):
            sock.sendall(b"a" * 65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    return read_answer(sock)


@pytest.fixture
def limited(proxy_factory):
    return proxy_factory(server={"max_header_bytes": 8192, "header_timeout_seconds": 2.0, "max_connections": 20})


def test_a_request_head_over_the_limit_gets_431_and_is_closed(limited):
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ")
        answer = endless_line_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"SERVER__MAX_HEADER_BYTES=8192" in answer
    assert httpx.get(limited.url + "/health").status_code == 200


def test_a_head_over_the_limit_in_one_read_gets_431_and_reaches_no_route(limited, upstream):
    httpx.delete(upstream.url + "/_mock/requests")
    body = json.dumps(BODY).encode()
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
        b"x-big: " + b"a" * 10_000 + b"\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(head + body)  # one write: the parser sees the whole head at once
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == []


def test_a_small_head_with_a_large_body_in_one_read_is_not_refused(limited):
    body = json.dumps({**BODY, "messages": [{"role": "user", "content": "x" * 100_000}]}).encode()
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
        b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(head + body)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: -5\r\n\r\n",
        b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-odd: a\x01b\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_a_malformed_request_gets_a_json_400(limited, head):
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(head)
        answer = read_answer(sock)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert "not valid HTTP/1.1" in json.loads(rest.partition(b"\r\n\r\n")[2])["detail"]


def test_headers_within_the_limit_pass(limited):
    response = httpx.get(limited.url + "/health", headers={"x-fill": "a" * 6000})
    assert response.status_code == 200


def test_a_slow_request_head_is_closed(limited):
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127")
        answer = read_answer(sock)  # the server must end it: no more bytes ever come
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    with socket.create_connection(address(limited.url)) as silent:
        assert read_answer(silent) == b""  # closed without a word


def test_a_keep_alive_connection_gets_a_fresh_deadline_for_each_request(limited):
    with httpx.Client() as client:
        for _ in range(3):
            assert client.get(limited.url + "/health").status_code == 200
            time.sleep(0.2)


def test_connections_beyond_the_cap_get_a_clear_503(limited):
    idle = [socket.create_connection(address(limited.url)) for _ in range(20)]
    try:
        for sock in idle:  # keep them busy sending a head slowly, below the timeout
            sock.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(0.1)
        with socket.create_connection(address(limited.url)) as extra:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = read_answer(extra)
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert b"SERVER__MAX_CONNECTIONS=20" in answer
    finally:
        for sock in idle:
            sock.close()
    # once those connections are gone, the server takes new clients again
    wait_until(lambda: httpx.get(limited.url + "/health").status_code == 200, timeout=10, interval=0.1)


def test_large_bodies_wait_for_the_buffer_budget_and_all_succeed(proxy_factory, upstream):
    budget = 3 * 1024 * 1024
    proxy = proxy_factory(server={"max_request_bytes": 2 * 1024 * 1024, "max_buffered_body_bytes": budget})
    padding = "x" * (1024 * 1024 + 512 * 1024)
    results: list[int] = []

    def send() -> None:
        body = {**BODY, "messages": [{"role": "user", "content": padding}]}
        results.append(httpx.post(proxy.url + "/v1/messages", json=body, headers=ANTHROPIC, timeout=30).status_code)

    httpx.delete(upstream.url + "/_mock/requests")
    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == [200] * 6
    received = httpx.get(upstream.url + "/_mock/requests").json()["requests"]
    assert [json.loads(seen["body"])["messages"][0]["content"] for seen in received] == [
        padding
    ] * 6  # whole, unchanged
    budget_now = proxy.app.state.proxy.body_budget
    assert budget_now.available == budget_now.total  # everything reserved was given back


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_large_body_that_stops_arriving_gets_408_and_frees_its_room(proxy_factory, recorder, framing):
    proxy = proxy_factory(
        plugins=[recorder],
        server={
            "max_request_bytes": 4 * 1024 * 1024,
            "max_buffered_body_bytes": 4 * 1024 * 1024,
            "body_timeout_seconds": 1,
        },
    )
    framing_header = b"content-length: 4194304" if framing == "content-length" else b"transfer-encoding: chunked"
    with socket.create_connection(address(proxy.url)) as stalled:
        stalled.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
            b"content-type: application/json\r\n" + framing_header + b"\r\n\r\n"
        )
        # The stalled body holds the whole budget: another large body waits for it, then goes through.
        padding = "x" * (128 * 1024)
        body = {**BODY, "messages": [{"role": "user", "content": padding}]}
        answer = httpx.post(proxy.url + "/v1/messages", json=body, headers=ANTHROPIC, timeout=30)
        assert answer.status_code == 200
        stalled_answer = read_answer(stalled)
    assert stalled_answer.startswith(b"HTTP/1.1 408") and b"SERVER__BODY_TIMEOUT_SECONDS" in stalled_answer
    records = recorder.wait_for_ends(2)
    assert sorted((r.status_code, r.error_type) for r in records) == [(200, None), (408, "request_timeout")]
    budget = proxy.app.state.proxy.body_budget
    assert budget.available == budget.total and budget.waits == 1


def test_a_request_without_a_body_never_waits_for_body_room(proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder],
        server={"max_request_bytes": 4 * 1024 * 1024, "max_buffered_body_bytes": 4 * 1024 * 1024},
    )
    with socket.create_connection(address(proxy.url)) as stalled:  # holds the whole budget meanwhile
        stalled.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        wait_until(lambda: proxy.app.state.proxy.body_budget.available == 0)
        # Before: a GET reserved the largest body allowed, so it waited behind any body in flight.
        models = httpx.get(proxy.url + "/v1/models", headers=ANTHROPIC, timeout=30)
        assert models.status_code == 200
        assert proxy.app.state.proxy.body_budget.waits == 0
    recorder.wait_for_ends(2)


def test_idle_connections_beyond_the_cap_are_closed_at_once_and_the_others_kept(proxy_factory):
    proxy = proxy_factory(server={"max_connections": 2, "header_timeout_seconds": 30})
    within = [socket.create_connection(address(proxy.url)) for _ in range(2)]
    time.sleep(0.2)
    beyond = [socket.create_connection(address(proxy.url)) for _ in range(3)]
    try:
        assert [closed_unanswered(sock, timeout=5) for sock in beyond] == [True] * 3
        for sock in within:
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):  # still open, waiting for its request
                sock.recv(1)
    finally:
        for sock in within + beyond:
            sock.close()


def closed_unanswered(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` without sending a byte."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_a_body_whose_chunked_framing_breaks_is_recorded_as_the_400_the_client_got(proxy_factory, recorder, upstream):
    httpx.delete(upstream.url + "/_mock/requests")
    proxy = proxy_factory(plugins=[recorder])
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
            b'content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"mod\r\n'
        )
        time.sleep(0.3)  # the head and the first chunk reach the app before the broken size line
        sock.sendall(b"zz\r\nnot a chunk\r\n")
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 ") and b"chunked framing" in answer, answer[:300]
    (record,) = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (400, "invalid_request")
    assert "chunked framing" in record.error_message
    assert httpx.get(upstream.url + "/_mock/requests").json()["count"] == 0  # nothing was forwarded


def messages_request(extra: bytes = b"") -> bytes:
    body = json.dumps(BODY).encode()
    return (
        b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body) + extra + b"\r\n" + body
    )


@pytest.mark.parametrize(
    ("broken", "status"),
    [
        (b"GARBAGE / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", b"400"),
        (b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n", b"400"),
        (b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 10_000 + b"\r\n\r\n", b"431"),
    ],
    ids=["unparseable", "two-lengths", "too-large"],
)
def test_a_request_pipelined_ahead_of_a_refused_head_is_answered_and_recorded_first(
    proxy_factory, recorder, broken, status
):
    # Before, the first request went to the provider (and was billed), but the client got only the
    # refusal, and the record said the client had hung up (499).
    proxy = proxy_factory(plugins=[recorder], server={"max_header_bytes": 8192})
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(messages_request() + broken)  # one write: both heads arrive together
        answer = read_answer(sock)
    first, _, second = answer.partition(b"HTTP/1.1 " + status)
    assert first.startswith(b"HTTP/1.1 200 OK") and b'"type":"message"' in first, answer[:300]
    assert second, answer[-300:]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)


@pytest.mark.parametrize(
    "broken",
    [b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: zz\r\n\r\n", b"GARBAGE\r\n\r\n"],
    ids=["bad-length", "no-request-line"],
)
def test_every_request_pipelined_ahead_of_an_unparseable_head_is_answered_and_recorded(
    proxy_factory, recorder, upstream, broken
):
    # Before, the last request ahead of the broken head was dropped from the pipeline unanswered and
    # unrecorded, and the client read the 400 in its place.
    httpx.delete(upstream.url + "/_mock/requests")
    proxy = proxy_factory(plugins=[recorder])
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(messages_request() * 3 + broken)  # one write
        answer = read_answer(sock)
    assert answer.count(b"HTTP/1.1 200 OK") == 3 and answer.count(b"HTTP/1.1 400 ") == 1, answer[:600]
    assert [record.status_code for record in recorder.wait_for_ends(3)] == [200, 200, 200]
    assert httpx.get(upstream.url + "/_mock/requests").json()["count"] == 3


def test_the_head_limit_holds_for_the_second_request_of_a_kept_alive_connection(limited):
    # Before, the read that began a kept-alive connection's next head went uncounted: some 16 KB
    # passed a limit of 8 KB.
    big = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 12_000 + b"\r\n\r\n"
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.sendall(big)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


@pytest.mark.parametrize("after", [b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n", messages_request()])
def test_nothing_after_an_oversized_head_is_answered(limited, upstream, after):
    httpx.delete(upstream.url + "/_mock/requests")
    oversized = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-big: " + b"a" * 10_000 + b"\r\n\r\n"
    with socket.create_connection(address(limited.url)) as sock:
        sock.sendall(oversized + after)  # one write
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 431 ") and answer.count(b"HTTP/1.1 ") == 1, answer[:300]
    assert httpx.get(upstream.url + "/_mock/requests").json()["requests"] == []


@pytest.mark.parametrize(
    "framing",
    [b"0\r\nx-trailer: ", b"5;ext="],
    ids=["endless-trailer-field", "endless-chunk-extension"],
)
def test_chunked_framing_without_end_is_refused_at_the_head_limit_and_recorded(proxy_factory, recorder, framing):
    # httptools holds a trailer field whole until its line ends: before, one connection grew the
    # server by 160 MB in 30 s and held its event loop for seconds at a time, until the body deadline.
    proxy = proxy_factory(plugins=[recorder], server={"max_header_bytes": 8192})
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n" + framing
        )
        answer = endless_line_answer(sock)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"SERVER__MAX_HEADER_BYTES=8192" in answer
    (record,) = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (400, "invalid_request")
    assert httpx.get(proxy.url + "/health").status_code == 200


def test_a_chunked_body_of_many_small_chunks_and_a_trailer_passes(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], server={"max_header_bytes": 8192})
    body = json.dumps(BODY).encode()
    chunks = b"".join(b"1;n=v\r\n%c\r\n" % byte for byte in body) + b"0\r\nx-trailer: " + b"t" * 4000 + b"\r\n\r\n"
    with socket.create_connection(address(proxy.url)) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: sk-ant-test\r\nanthropic-version: 2023-06-01\r\n"
            b"content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        for start in range(0, len(chunks), 100):  # in many reads
            sock.sendall(chunks[start : start + 100])
            time.sleep(0.001)
        answer = read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    (record,) = recorder.wait_for_ends(1)
    assert (record.status_code, record.model) == (200, "claude-haiku-4-5")
