"""The first token, which times ``ttft_ms``: the first delta with content in an event the client's SDK hands
on, over HTTP or a WebSocket alike."""

from __future__ import annotations

import json

import pytest

from ccproxy_core.accounting.usage import StreamUsageParser
from ccproxy_core.forwarding import websocket_messages


@pytest.mark.parametrize("name", [b"event: ping\n", b"", b"event:\n"])
def test_a_content_delta_in_an_event_the_sdks_skip_is_not_the_first_token(name):
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ghost"}}
    parser = StreamUsageParser("anthropic", "messages")
    assert parser.feed(name + b"data: " + json.dumps(delta).encode() + b"\n\n") is False  # before: True
    assert parser.feed(b"event: content_block_delta\ndata: " + json.dumps(delta).encode() + b"\n\n") is True


@pytest.mark.parametrize(
    ("kind", "delta", "first"),
    [
        ("response.output_text.delta", "", False),
        ("response.output_text.delta", "Hi", True),
        ("response.reasoning_summary_text.delta", "Thinking", True),
        ("response.function_call_arguments.delta", "{", True),
    ],
)
def test_a_websocket_answers_first_token_is_its_first_delta_with_content_as_over_http(kind, delta, first):
    message = json.dumps({"type": kind, "item_id": "msg_1", "output_index": 0, "delta": delta})
    assert websocket_messages.examined(message, True, 1 << 20)[0] is first
    assert StreamUsageParser("openai", "responses").feed(b"data: " + message.encode() + b"\n\n") is first
