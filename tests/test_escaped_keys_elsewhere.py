"""Keys and types spelt with JSON escapes on the WebSocket and in Anthropic streams, and provider keys
glued to a word, as the SDKs and a reader of a record would see them.
"""

from __future__ import annotations

import json

from ccproxy_core.accounting.usage import StreamUsageParser
from ccproxy_core.forwarding.websocket_messages import examined
from ccproxy_core.safe_values import DEFAULT_CAPS, safe_error_text, safe_record
from ccproxy_core.testing import make_record

from .test_sdk_agreement import MESSAGE

FOREIGN_KEY = "sk-proj-" + "Q7x" * 52  # another key than the request's, shaped as OpenAI's (156 characters)


def test_a_websocket_answers_end_whose_type_is_escaped_is_read():
    done = {"type": "response.done", "response": {"status": "completed", "usage": {"input_tokens": 10}}}
    text = json.dumps(done).replace("response.done", "response.\\u0064one")
    _, event, _ = examined(text, False, 1 << 20)
    # Before: not decoded, so a finished, billed answer was recorded as a client that left (499, no usage).
    assert isinstance(event, dict) and event["type"] == "response.done"


def test_an_anthropic_message_delta_whose_type_is_escaped_is_read_under_any_event_name():
    start = json.dumps({"type": "message_start", "message": MESSAGE}).encode()
    delta = b'{"type": "message_\\u0064elta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 500}}'
    parser = StreamUsageParser("anthropic")
    parser.feed(b"event: message_start\ndata: " + start + b"\n\n")
    parser.feed(b"event: content_block_delta\ndata: " + delta + b"\n\n")  # the SDK goes by the decoded type
    parser.feed(b'event: message_stop\ndata: {"type": "message_stop"}\n\n')
    result = parser.result()
    assert (result.output_tokens, result.finish_reason) == (500, "end_turn")  # before: unknown, unpriced


def test_a_foreign_key_glued_to_a_model_name_at_its_cap_leaves_no_part_of_itself():
    model = "ft:gpt-4o-mini:acme:" + "a" * 217 + FOREIGN_KEY  # the key starts 19 characters before the cap
    record = safe_record(make_record(model=model, response_model=model), DEFAULT_CAPS, ())
    for value in (record.model, record.response_model):
        # Before: "...aaaask-proj-Q7xQ7x…", some 30 characters of the key's secret part.
        assert "Q7x" not in value and len(value) <= DEFAULT_CAPS.model


def test_a_foreign_key_glued_to_a_word_in_an_error_message_is_masked():
    message = f"Incorrect API key provided: api_key_{FOREIGN_KEY} or Bearer{FOREIGN_KEY}"
    assert "Q7x" not in safe_error_text(message, 1000)  # before: both kept whole
