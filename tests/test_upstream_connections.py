"""Kept-alive connections to the provider: an answer is only ever read for the request that asked for it."""

from __future__ import annotations

import json
import socket
import time

import anthropic
import httpx
import pytest

from tests.raw_upstream import RawUpstream, raw_upstream, sse

_HEAD_END = b"\r\n\r\n"


def messages_answer(message_id: str, input_tokens: int) -> bytes:
    """A Messages answer (docs.anthropic.com, Messages API) on a kept-alive connection."""
    body = json.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": message_id}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 5},
        }
    ).encode()
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body


def _stream_events() -> list[bytes]:
    """A whole Messages stream (docs.anthropic.com, streaming messages) of 25 input and 5 output tokens."""
    start = {"id": "msg_whole", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": []}
    start |= {"usage": {"input_tokens": 25, "output_tokens": 1}}
    return [
        sse(("message_start", {"type": "message_start", "message": start})),
        sse(
            (
                "message_delta",
                {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
            )
        ),
        sse(("message_stop", {"type": "message_stop"})),
    ]


class ChattyProvider(RawUpstream):
    """Answers each request on a kept-alive connection, then writes an answer nobody asked for on it."""

    def __init__(self) -> None:
        self.connections = 0
        super().__init__({})

    def _answer(self, connection: socket.socket) -> None:
        self.connections += 1
        self._serve(connection)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            pending = b""
            for number in range(1_000):
                head, pending = self._read_request(connection, pending)
                if head is None:
                    return
                try:
                    self._respond(connection, head, number)
                except OSError:
                    return

    def _respond(self, connection: socket.socket, head: bytes, number: int) -> None:
        connection.sendall(messages_answer(f"msg_{number}", 10))
        time.sleep(0.2)
        connection.sendall(messages_answer("msg_unasked", 777_777))

    @staticmethod
    def _read_request(connection: socket.socket, pending: bytes) -> tuple[bytes | None, bytes]:
        while _HEAD_END not in pending:
            chunk = connection.recv(65536)
            if not chunk:
                return None, b""
            pending += chunk
        head, _, rest = pending.partition(_HEAD_END)
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(rest) < length:
            chunk = connection.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return head, rest[length:]


@pytest.fixture
def chatty_provider():
    provider = ChattyProvider()
    yield provider
    provider.stop()


def test_an_answer_sent_on_an_idle_connection_is_never_the_next_requests(proxy_factory, recorder, chatty_provider):
    # Before, the second request was answered, and recorded, with the unasked answer (777,777 tokens).
    proxy = proxy_factory(upstream_url=chatty_provider.url, plugins=[recorder])
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)
    texts = []
    for _ in range(2):
        answer = client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        texts.append(answer.content[0].text)
        time.sleep(0.5)  # the unasked answer arrives meanwhile
    assert texts == ["msg_0", "msg_0"]  # each on a connection of its own
    assert [record.tokens_input for record in recorder.wait_for_ends(2)] == [10, 10]
    assert chatty_provider.connections == 2


class UnaskedAfterChunks(ChattyProvider):
    """Answers with a chunked body whose last chunk comes, in one write, with an answer nobody asked for."""

    def _respond(self, connection: socket.socket, head: bytes, number: int) -> None:
        body = messages_answer(f"msg_{number}", 10).partition(_HEAD_END)[2]
        half = len(body) // 2
        connection.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (half, body[:half])
        )
        time.sleep(0.1)  # the head and the first chunk are read by now
        last = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body) - half, body[half:])
        connection.sendall(last + messages_answer("msg_unasked", 777_777))


def test_an_answer_sent_with_the_end_of_the_one_asked_for_is_never_the_next_requests(proxy_factory, recorder):
    # Before, the next request was answered, and recorded, with the unasked answer: the provider never saw it.
    provider = UnaskedAfterChunks()
    try:
        proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder], upstream={"max_connections": 1})
        client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)
        texts = [
            client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
            .content[0]
            .text
            for _ in range(2)
        ]
        assert texts == ["msg_0", "msg_0"]  # each on a connection of its own
        assert [record.tokens_input for record in recorder.wait_for_ends(2)] == [10, 10]
        assert provider.connections == 2
    finally:
        provider.stop()


class BodyAfterNoContent(ChattyProvider):
    """Answers its first request with a 204 that declares a body, and sends that body (an answer of its own)
    in a second write; every other request with a proper answer."""

    def _respond(self, connection: socket.socket, head: bytes, number: int) -> None:
        if b"DELETE" in head.split(b"\r\n")[0] and not self.sent_204:
            self.sent_204 = True
            leaked = messages_answer("msg_leaked", 777_777)
            connection.sendall(b"HTTP/1.1 204 No Content\r\ncontent-length: %d\r\n\r\n" % len(leaked))
            time.sleep(0.3)  # the next request is on its way by now
            connection.sendall(leaked)
        else:
            connection.sendall(messages_answer(f"msg_{number}", 10))

    sent_204 = False


def test_a_no_content_answer_that_declares_a_body_ends_its_connection(proxy_factory, recorder):
    # RFC 9110 forbids a length on a 204: the bytes after its head are no answer, and the next request
    # sent on the connection took them for its own (another request's tokens, in its record).
    provider = BodyAfterNoContent()
    try:
        proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder], upstream={"max_connections": 1})
        client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)
        deleted = httpx.delete(proxy.url + "/v1/files/file_1", headers={"x-api-key": "sk-ant-test"})
        assert deleted.status_code == 204
        answer = client.messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.content[0].text == "msg_0"  # its own answer, on a new connection
        assert [record.tokens_input for record in recorder.wait_for_ends(2)] == [None, 10]
        assert provider.connections == 2
    finally:
        provider.stop()


STREAM = b"".join(_stream_events())
TRAILED: dict[str, bytes | list[bytes | float | str]] = {
    # A whole answer (its Content-Length says where it ends) with stray bytes after it in the same write.
    "json": messages_answer("msg_whole", 25) + b"garbage!!\r\n",
    "100-continue": b"HTTP/1.1 100 Continue\r\n\r\n" + messages_answer("msg_whole", 25) + b"garbage!!\r\n",
    "stream": b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s"
    % (len(STREAM), STREAM)
    + b"garbage!!\r\n",
}
WHOLE = messages_answer("msg_whole", 25) + b"garbage!!\r\n"
HEAD_END = WHOLE.index(b"\r\n\r\n")
# The head's blank line cut between two writes (so, most likely, between two reads), at each of its three places.
TRAILED |= {f"blank-line-cut-{cut}": [WHOLE[: HEAD_END + cut], 0.05, WHOLE[HEAD_END + cut :]] for cut in (1, 2, 3)}


@pytest.mark.parametrize("shape", list(TRAILED))
def test_a_whole_answer_with_stray_bytes_after_it_is_the_provider_s_answer(proxy_factory, recorder, shape):
    # Before: aiohttp's parser dropped the answer it had read with the bytes that broke HTTP after it:
    # a 502 without usage for an answer billed, which the SDK then sent again.
    with raw_upstream({"": TRAILED[shape]}) as provider:
        proxy = proxy_factory(upstream_url=provider.url, plugins=[recorder])
        stream = {"stream": True} if shape == "stream" else {}
        answer = httpx.post(
            proxy.url + "/v1/messages",
            json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [], **stream},
            headers={"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
        )
        [record] = recorder.wait_for_ends(1)
    assert answer.status_code == 200 and b"msg_whole" in answer.content
    assert (record.status_code, record.error_type, record.tokens_input, record.tokens_output) == (200, None, 25, 5)
    assert record.priced
