"""Stream chunks whose keys are spelt with JSON escapes, as the SDKs read them once decoded.

The openai SDK decodes every event and raises on one whose ``error`` is set, and reads ``usage``
and ``finish_reason`` from the decoded chunk: ``{"\\u0065rror": ...}`` is an error to it. ccproxy
finds the chunks worth decoding by a byte search; a chunk holding such an escape is decoded instead.
"""

from __future__ import annotations

import json

from ccproxy_core.accounting.usage import StreamUsageParser

FIRST = {
    "id": "c",
    "object": "chat.completion.chunk",
    "model": "gpt-4o",
    "choices": [{"index": 0, "delta": {"content": "hi"}}],
}


def _chat(*events: bytes) -> StreamUsageParser:
    parser = StreamUsageParser("openai")
    parser.feed(b"data: " + json.dumps(FIRST).encode() + b"\n\n")
    for event in events:
        parser.feed(b"data: " + event + b"\n\n")
    return parser


def test_an_error_chunk_with_an_escaped_key_is_the_streams_error():
    parser = _chat(b'{"\\u0065rror": {"message": "overloaded", "type": "server_error", "code": "overloaded"}}')
    # Before: a success (200, no error), while the SDK raised APIError("overloaded").
    assert parser.result().error_type == "overloaded" and parser.final_state().error_seen


def test_usage_and_finish_reason_under_escaped_keys_are_read():
    finish = b'{"choices": [{"index": 0, "delta": {}, "\\u0066inish_reason": "length"}]}'
    usage = b'{"choices": [], "us\\u0061ge": {"prompt_tokens": 1000, "completion_tokens": 200}}'
    result = _chat(finish, usage, b"[DONE]").result()
    assert (result.input_tokens, result.output_tokens, result.finish_reason) == (1000, 200, "length")


def test_a_responses_event_whose_type_is_escaped_ends_the_stream():
    done = {"type": "response.\u0063ompleted", "response": {"id": "r", "object": "response", "status": "completed"}}
    done["response"]["usage"] = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    data = json.dumps(done).replace("response.completed", "response.\\u0063ompleted", 1).encode()
    parser = StreamUsageParser("openai", "responses")
    parser.feed(b"event: response.completed\ndata: " + data + b"\n\n")
    assert parser.final_state().terminal_seen and parser.result().output_tokens == 5


def test_a_null_chunk_and_bytes_after_done_are_what_the_openai_sdk_reads_without_failing():
    # The SDK decodes `data: null` to None and goes on; it stops at [DONE] and never decodes what follows.
    usage = b'{"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}'
    parser = StreamUsageParser("openai")
    parser.feed(b"data: null\n\n")
    parser.feed(b"data: " + json.dumps(FIRST).encode() + b"\n\ndata: " + usage + b"\n\ndata: [DONE]\n\n\xff\n")
    # Before: unreadable both times, so an answer the SDK read whole was recorded as a broken stream.
    assert not parser.final_state().unreadable
    assert (parser.result().input_tokens, parser.result().output_tokens) == (10, 5)
