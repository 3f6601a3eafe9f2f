"""A client that hangs up while the provider is still working: recorded as it left, and the provider told.

A JSON answer from Anthropic comes whole when the model is done, so the wait before its head can be
minutes. The provider here reads the request, then waits: it answers after ``x-answer-after``
seconds if given, and notes when ccproxy closes the connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from ccproxy_core.forwarding.hang_up_watch import WATCH_AFTER_SECONDS

ANSWER = json.dumps(
    {
        "id": "msg_slow",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "Hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }
).encode()
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "content-type": "application/json"}


class SlowProvider:
    """Reads one request per connection, then answers late or waits for ccproxy to hang up."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.hung_up_after: list[float] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            received = b""
            while b"\r\n\r\n" not in received or not received.endswith(b"}"):
                received += connection.recv(65536)
            answer_after = next(
                (float(line.split(b":")[1]) for line in received.split(b"\r\n") if line.startswith(b"x-answer-after")),
                None,
            )
            started = time.monotonic()
            if b"x-drip: 1" in received:  # the head and half the answer now, the rest never
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER)
                connection.sendall(head + ANSWER[: len(ANSWER) // 2])
            connection.settimeout(answer_after or 30)
            try:
                if connection.recv(1) == b"":
                    self.hung_up_after.append(time.monotonic() - started)
                    return
            except TimeoutError:
                head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER)
                connection.sendall(head + ANSWER)

    def stop(self) -> None:
        self._listener.close()


@pytest.fixture
def provider():
    server = SlowProvider()
    yield server
    server.stop()


def hang_up_after(proxy_url: str, seconds: float, stream: bool, extra: dict[str, str] | None = None) -> None:
    """Send a whole Messages request, wait ``seconds`` without reading, and close the connection."""
    body = json.dumps({"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [], "stream": stream}).encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in {**HEADERS, **(extra or {})}.items())
    host, port = proxy_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        request = f"POST /v1/messages HTTP/1.1\r\nhost: {host}\r\n{head}content-length: {len(body)}\r\n\r\n"
        client.sendall(request.encode() + body)
        time.sleep(seconds)


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_that_leaves_before_the_answer_is_a_499_and_the_provider_sees_it_leave(
    provider, proxy_factory, recorder, stream
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    hang_up_after(proxy.url, 0.3, stream)
    [record] = recorder.wait_for_ends(1, timeout=10)
    assert (record.status_code, record.error_type, record.upstream_status) == (499, "client_disconnected", None)
    assert record.error_message == "the client closed the connection before the provider answered"
    assert record.tokens_input is None and record.duration_ms < 5_000  # not the provider's 30 s, nor a timeout
    deadline = time.monotonic() + 5
    while not provider.hung_up_after and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.hung_up_after and provider.hung_up_after[0] < 5  # its connection closed, as the client's was


def test_a_client_that_waits_gets_a_late_answer_whole(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    late = WATCH_AFTER_SECONDS + 1.0  # the watch has started by then, and must leave the answer alone
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": []}
    answer = httpx.post(f"{proxy.url}/v1/messages", json=body, headers={**HEADERS, "x-answer-after": str(late)})
    assert answer.status_code == 200 and answer.content == ANSWER
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_input, record.tokens_output) == (200, None, 12, 3)
    assert not provider.hung_up_after


def test_a_client_that_leaves_while_a_whole_answer_trickles_in_is_a_499_and_the_provider_sees_it_leave(
    provider, proxy_factory, recorder
):
    # Before, ccproxy went on reading for nobody until the provider finished or the read timeout
    # (600 s by default), holding a connection of the pool; the record came then, saying 502.
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    hang_up_after(proxy.url, 0.3, False, {"x-drip": "1"})
    [record] = recorder.wait_for_ends(1, timeout=10)
    assert (record.status_code, record.error_type, record.upstream_status) == (499, "client_disconnected", 200)
    assert record.error_message == "the client closed the connection while the provider's answer arrived"
    assert record.tokens_input is None and record.duration_ms < 5_000
    deadline = time.monotonic() + 5
    while not provider.hung_up_after and time.monotonic() < deadline:
        time.sleep(0.05)
    assert provider.hung_up_after and provider.hung_up_after[0] < 5
