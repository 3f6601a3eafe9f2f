"""Time limits on the way to the provider: a request the provider stops reading, or answers a header
line at a time, ends within the connect and read timeouts together; and a kept-alive connection
idles in the pool with no read timer running, so the next request on it reaches the provider."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time

import httpx
import pytest

from ccproxy_core.forwarding import upstream as upstream_module
from ccproxy_core.forwarding.send_deadlines import SendDeadlines
from ccproxy_core.forwarding.upstream_protocol import UpstreamProtocol

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

TIMEOUTS = {"connect_timeout_seconds": 0.5, "read_timeout_seconds": 0.5}
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
# A head sent a line at a time, each within the read timeout: aiohttp's timer starts again at each.
TRICKLE: list[bytes | float | str] = [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"]
TRICKLE += [part for n in range(20) for part in (0.3, b"x-slow-%d: v\r\n" % n)]
upstream, _proxy = upstream_and_proxy_fixtures({"trickle": TRICKLE})


@pytest.fixture
def deaf_provider():
    """A provider that accepts connections and never reads from them."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                accepted.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
    for connection in accepted:
        connection.close()


def test_an_answer_head_sent_a_line_at_a_time_ends_in_504_within_the_timeouts(upstream, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url, upstream=TIMEOUTS)
    started = time.monotonic()
    answer = httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "trickle"}, timeout=30)
    waited = time.monotonic() - started
    [record] = recorder.wait_for_ends(1)
    # Before: no end until the client gave up (or 128 header lines, each up to the read timeout apart).
    assert (answer.status_code, record.status_code, record.error_type) == (504, 504, "upstream_timeout")
    assert waited < 5


def test_a_large_body_the_provider_never_reads_ends_in_504_within_the_timeouts(
    deaf_provider, proxy_factory, recorder, monkeypatch
):
    monkeypatch.setattr(upstream_module, "SLOWEST_UPLOAD_BYTES_PER_SECOND", 16 * 1024 * 1024)  # 1 s for this body
    proxy = proxy_factory(plugins=[recorder], upstream_url=deaf_provider, upstream=TIMEOUTS)
    big = {**REQUEST, "messages": [{"role": "user", "content": "x" * 16_000_000}]}
    started = time.monotonic()
    answer = httpx.post(proxy.url + "/v1/messages", json=big, headers=HEADERS, timeout=60)
    waited = time.monotonic() - started
    [record] = recorder.wait_for_ends(1)
    # Before: the request hung until its client left, holding its share of the body memory.
    assert (answer.status_code, record.status_code, record.error_type) == (504, 504, "upstream_timeout")
    assert waited < 10
    assert answer.json()["error"]["message"] == (
        "anthropic did not take the request and answer within "
        "UPSTREAM__CONNECT_TIMEOUT_SECONDS and UPSTREAM__READ_TIMEOUT_SECONDS together (and the body's time at "
        "16384 KiB/s)"  # the rate this test sets
    )


@pytest.fixture
def slow_reader():
    """A provider that reads a body slowly (64 KiB at most every 1/64 s: some 4 MB/s), steadily, then answers."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer(connection: socket.socket) -> None:
        with connection, contextlib.suppress(OSError):
            received = b""
            while b"\r\n\r\n" not in received:
                received += connection.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += connection.recv(65536)
                time.sleep(1 / 64)
            connection.sendall(json_answer(b"200 OK", MESSAGE))

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                threading.Thread(target=answer, args=(listener.accept()[0],), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_body_the_provider_reads_slowly_but_steadily_is_answered(slow_reader, proxy_factory, recorder, monkeypatch):
    monkeypatch.setattr(upstream_module, "SLOWEST_UPLOAD_BYTES_PER_SECOND", 1024 * 1024)
    # The read timeout covers reading what the sockets' buffers hold once the body is written (some MB).
    timeouts = {"connect_timeout_seconds": 0.5, "read_timeout_seconds": 2}
    proxy = proxy_factory(plugins=[recorder], upstream_url=slow_reader, upstream=timeouts)
    big = {**REQUEST, "messages": [{"role": "user", "content": "x" * 16_000_000}]}  # some 4 s to read
    answer = httpx.post(proxy.url + "/v1/messages", json=big, headers=HEADERS, timeout=60)
    [record] = recorder.wait_for_ends(1)
    # Without the body's own time, cut after the connect and read timeouts (2.5 s): a 504 for an answer that came.
    assert (answer.status_code, record.status_code, record.error_type, record.tokens_input) == (200, 200, None, 10)


BODY = b"x" * 100_000
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY)


async def _answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(ANSWER)  # then the connection stays open, idle, as a kept-alive one does
    await writer.drain()
    await reader.read()


def test_a_connection_whose_answer_was_read_slowly_runs_no_read_timer_once_idle():
    async def scenario() -> BaseException | None:
        loop = asyncio.get_running_loop()
        server = await asyncio.start_server(_answer_once, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, protocol = await loop.create_connection(lambda: UpstreamProtocol(loop=loop), "127.0.0.1", port)
        # A tiny buffer: reading pauses at every arrival, the answer's last one too, and resumes
        # only as the body is consumed, after its end was parsed (a client slower than the provider).
        protocol.set_response_params(read_timeout=0.2, read_bufsize=1)
        _message, payload = await protocol.read()
        await asyncio.sleep(0.1)  # everything has arrived
        assert await payload.read() == BODY
        await asyncio.sleep(0.5)  # idle in the pool, longer than the read timeout
        failure = protocol.exception()
        protocol.close()
        server.close()
        return failure

    # Before: a timeout put on the idle connection, which the next request sent on it raised at
    # once (a 504 for a request the provider never saw).
    assert asyncio.run(scenario()) is None


def test_a_cancel_beside_the_deadlines_own_stays_a_cancel():
    async def scenario() -> list[str]:
        deadlines = SendDeadlines()

        async def send() -> str:
            task = deadlines.start(60)
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                if deadlines.timed_out(task):
                    return "timeout"
                return "cancelled"
            finally:
                deadlines.end(task)
            return "answered"

        alone, both = asyncio.ensure_future(send()), asyncio.ensure_future(send())
        await asyncio.sleep(0.01)
        for task in (alone, both):  # what the sweeper does to a send past its deadline
            deadlines._overdue.add(task)
            task.cancel()
        both.cancel()  # and, in the same pass, a client's hang-up
        outcomes = [await alone, await both]
        deadlines.close()
        return outcomes

    # Before, the deadline took the hang-up's cancel for its own: a 504 where a 499 was due.
    assert asyncio.run(scenario()) == ["timeout", "cancelled"]
