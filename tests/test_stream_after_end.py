"""What a provider sends after its stream's last word is no part of the answer: never counted.

The SDKs stop at OpenAI's ``data: [DONE]``, raise on an error event or chunk, and Anthropic's streaming
reference names ``message_stop`` the final event; a Responses answer ends with ``response.completed``
(or ``.failed``, ``.incomplete``). A usage event after that (a hostile or broken provider, a gateway
appending its own) once set the record's counts, and its cost, to numbers no client saw.
"""

from __future__ import annotations

import json

import pytest

from .test_stream_events import ANTHROPIC_HEAD, CHAT_STREAM, OVERLOADED, completed_event, delta_event, parse

LATE_CHAT_USAGE = (
    b'data: {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [], '
    b'"usage": {"prompt_tokens": 100, "completion_tokens": 99999, "total_tokens": 100099}}\n\n'
)
LATE_MESSAGE_DELTA = (
    b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, '
    b'"usage": {"output_tokens": 9999}}\n\n'
)
MESSAGE_STOP = b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
CHAT_ERROR = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'


def completed(output_tokens: int) -> bytes:
    event = completed_event([])
    event["response"]["usage"]["output_tokens"] = output_tokens
    return b"event: response.completed\ndata: " + json.dumps(event).encode() + b"\n\n"


def together_and_apart(stream: bytes, late: bytes) -> list[list[bytes]]:
    return [[stream + late], [stream, late], [stream + late[:10], late[10:]]]


@pytest.mark.parametrize("pieces", together_and_apart(CHAT_STREAM, LATE_CHAT_USAGE))
def test_chat_usage_after_done_is_not_counted(pieces):
    usage = parse("openai", pieces).result()
    # Before: 99,999 output tokens, a cost of $1.00 for an answer of 300 the SDK reported.
    assert (usage.input_tokens, usage.output_tokens) == (1200, 300)


@pytest.mark.parametrize(
    "pieces", together_and_apart(CHAT_STREAM.split(b"data: [DONE]")[0] + CHAT_ERROR, LATE_CHAT_USAGE)
)
def test_chat_usage_after_an_error_chunk_is_not_counted(pieces):
    parser = parse("openai", pieces)
    assert parser.final_state().error_seen and parser.result().output_tokens == 300


@pytest.mark.parametrize("pieces", together_and_apart(ANTHROPIC_HEAD + MESSAGE_STOP, LATE_MESSAGE_DELTA))
def test_a_message_delta_after_message_stop_is_not_counted(pieces):
    usage = parse("anthropic", pieces).result()
    # Before: 9,999 output tokens and "max_tokens".
    assert (usage.input_tokens, usage.output_tokens, usage.finish_reason) == (1000, 200, "end_turn")


@pytest.mark.parametrize("pieces", together_and_apart(ANTHROPIC_HEAD + OVERLOADED, LATE_MESSAGE_DELTA))
def test_usage_after_an_anthropic_error_event_is_not_counted(pieces):
    parser = parse("anthropic", pieces)
    assert parser.result().error_type == "overloaded_error" and parser.result().output_tokens == 200


@pytest.mark.parametrize("pieces", together_and_apart(delta_event("Hi", 4) + completed(800), completed(77777)))
def test_a_second_completed_response_is_not_counted(pieces):
    usage = parse("openai", pieces, reader="responses").result()
    assert (usage.input_tokens, usage.output_tokens) == (2000, 800)  # before: 77,777


def test_a_responses_error_event_does_not_end_the_answer_its_failed_response_does():
    error = b'event: error\ndata: {"type": "error", "code": "server_error", "message": "boom"}\n\n'
    parser = parse("openai", [delta_event("Hi", 4) + error + completed(800)], reader="responses")
    assert parser.result().output_tokens == 800  # the response's usage, after the error event, still counts
