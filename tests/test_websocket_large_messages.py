"""Large WebSocket messages both ways: relayed byte for byte, read off the event loop, their answer recorded."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
import websockets.sync.client

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.forwarding import websocket_messages, websocket_proxy
from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES
from ccproxy_core.json_text import decode_json
from tests.hostile_upstream import hostile_upstream

MODEL = "gpt-5"
# Many small tools (left whole when long strings are left out) and one long string: some 3 MB.
TOOLS = [{"type": "function", "name": f"tool_{i}", "parameters": {}} for i in range(35_000)]
LONG_TEXT = "an instruction, " * 65_000


def create(user: str = "user-42") -> str:
    return json.dumps(
        {"type": "response.create", "model": MODEL, "instructions": LONG_TEXT, "tools": TOOLS, "user": user}
    )


def answer(terminal: str = "response.completed", output_tokens: int = 7) -> list[str]:
    response = {"id": "resp_big", "object": "response", "model": MODEL, "instructions": LONG_TEXT, "tools": TOOLS}
    usage = {"input_tokens": 750_000, "output_tokens": output_tokens, "total_tokens": 750_000 + output_tokens}
    status = terminal.removeprefix("response.")
    return [
        json.dumps({"type": "response.created", "response": {**response, "status": "in_progress", "usage": None}}),
        json.dumps({"type": "response.output_text.delta", "item_id": "msg_1", "delta": "Hello"}),
        json.dumps({"type": terminal, "response": {**response, "status": status, "usage": usage}}),
    ]


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def turn(socket, text: str, count: int) -> list[str]:
    socket.send(text)
    return [socket.recv() for _ in range(count)]


def open_socket(proxy):
    return websockets.sync.client.connect(proxy.url.replace("http://", "ws://") + "/v1/responses", max_size=None)


def proxy_decoding_with(decode, monkeypatch, proxy_factory, recorder, provider):
    """A proxy whose WebSocket messages are decoded by ``decode``, the provider ready with one answer."""
    for module in (websocket_messages, websocket_proxy):
        monkeypatch.setattr(module, "decode_json", decode, raising=False)
    provider.socket_answers = [answer()]
    return proxy_factory(plugins=[recorder], upstream_url=provider.url)


def test_large_messages_both_ways_are_relayed_unchanged_and_their_answer_recorded(provider, proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    sent, answered = create(), answer()
    provider.socket_answers = [answered]
    assert all(len(text) > 2 * LARGE_BODY_BYTES for text in (sent, answered[0], answered[2]))
    with open_socket(proxy) as socket:
        assert turn(socket, sent, 3) == answered
    assert provider.socket_received == [sent]
    [record] = recorder.wait_for_ends(1)
    assert (record.method, record.model, record.status_code, record.error_type) == ("WEBSOCKET", MODEL, 200, None)
    assert (record.tokens_input, record.tokens_output, record.end_user) == (750_000, 7, "user-42")
    assert record.cost_usd == PriceBook().compute("openai", MODEL, Usage(750_000, 7)).total
    assert (record.request_bytes, record.response_bytes) == (len(sent), sum(map(len, answered)))
    assert record.ttft_ms is not None


@pytest.mark.parametrize("held", ['"response.create"', '"response.completed"'])
def test_other_requests_are_answered_while_a_large_message_is_decoded(
    provider, proxy_factory, recorder, monkeypatch, held
):
    """A decode of a large message that takes its time (here: until released) holds no other request."""
    entered, released = threading.Event(), threading.Event()

    def held_decode(text):
        if len(text) > LARGE_BODY_BYTES and held in text:
            entered.set()
            released.wait(30)
        return decode_json(text)

    proxy = proxy_decoding_with(held_decode, monkeypatch, proxy_factory, recorder, provider)
    with open_socket(proxy) as socket:
        socket.send(create())
        try:
            assert entered.wait(30)
            assert httpx.get(proxy.url + "/health", timeout=10).status_code == 200
        finally:
            released.set()
        assert [json.loads(socket.recv())["type"] for _ in range(3)][-1] == "response.completed"
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.tokens_input, record.tokens_output) == (200, 750_000, 7)


def test_the_long_strings_of_a_large_message_are_not_decoded(provider, proxy_factory, recorder, monkeypatch):
    """Decoding holds the interpreter whatever thread it runs in: the prompts and output text are left out."""
    decoded: list[str] = []

    def seen(text):
        decoded.append(text)
        return decode_json(text)

    proxy = proxy_decoding_with(seen, monkeypatch, proxy_factory, recorder, provider)
    with open_socket(proxy) as socket:
        turn(socket, create(), 3)
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.end_user) == (750_000, "user-42")
    assert len(decoded) == 3 and not any(LONG_TEXT in text for text in decoded)


@pytest.mark.parametrize(
    ("terminal", "error_type"), [("response.completed", None), ("response.failed", "response_failed")]
)
def test_messages_over_the_decoding_limit_are_relayed_and_their_answer_is_unread(
    provider, proxy_factory, recorder, terminal, error_type
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url, upstream={"max_decoded_bytes": 1_000_000})
    small = json.dumps({"type": "response.create", "model": MODEL, "input": "hi"})
    big_answer, small_answer = answer(terminal), _small_answer()
    provider.socket_answers = [big_answer, small_answer]
    with open_socket(proxy) as socket:
        assert turn(socket, create(), 3) == big_answer
        assert turn(socket, small, 2) == small_answer
    assert provider.socket_received == [create(), small]
    unread, next_turn = recorder.wait_for_ends(2)
    # Its end (and a failure) is known from the event's type; what it used is not, so it is not billed.
    assert (unread.model, unread.status_code, unread.error_type) == (MODEL, 200, error_type)
    assert (unread.tokens_input, unread.tokens_output, unread.cost_usd, unread.priced) == (None, None, None, False)
    assert (next_turn.status_code, next_turn.tokens_input, next_turn.tokens_output) == (200, 12, 3)


def _small_answer() -> list[str]:
    usage = {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15}
    response = {"id": "resp_small", "object": "response", "model": MODEL, "status": "in_progress", "usage": None}
    return [
        json.dumps({"type": "response.created", "response": response}),
        json.dumps({"type": "response.completed", "response": {**response, "status": "completed", "usage": usage}}),
    ]


@pytest.mark.parametrize(("status", "error_type"), [("completed", None), ("failed", "response_failed")])
def test_a_realtime_answer_over_the_decoding_limit_keeps_its_failure(
    provider, proxy_factory, recorder, status, error_type
):
    """Realtime's one terminal event names the answer's status inside its ``response`` object."""
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url, upstream={"max_decoded_bytes": 1_000_000})
    response = {"object": "realtime.response", "output": [{"text": LONG_TEXT}], "status": status, "usage": None}
    done = json.dumps({"type": "response.done", "event_id": "event_1", "response": response})
    provider.socket_answers = [[done]]
    url = proxy.url.replace("http://", "ws://") + "/v1/realtime?model=gpt-realtime"
    with websockets.sync.client.connect(url, max_size=None) as socket:
        assert turn(socket, json.dumps({"type": "response.create"}), 1) == [done]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced) == (200, error_type, False)
