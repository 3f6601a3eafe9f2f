"""Answers the SDKs read one way, recorded the same way: event names, unended last events, error bodies.

The streams and bodies are written from the providers' references (Messages' ``message_delta``,
Responses' ``response.completed``, Anthropic's error object) with one thing changed that the
SDKs still read, and sent by a raw upstream; the real SDKs read them through ccproxy.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from ccproxy_core.accounting.usage import StreamUsageParser

from .raw_upstream import json_answer, sse, stream_answer, upstream_and_proxy_fixtures
from .test_stream_events import GPT5_COST, completed_event

MESSAGE: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5",
    "content": [],
    "stop_reason": None,
    "usage": {"input_tokens": 1000, "output_tokens": 1},
}
DELTA = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 15}}
HAIKU_COST = (1000 * 1 + 15 * 5) / Decimal(1_000_000)  # claude-haiku-4-5: $1 / $5 per million tokens


def message_stream(delta_name: str) -> bytes:
    return sse(
        ("message_start", {"type": "message_start", "message": MESSAGE}),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (delta_name, DELTA),
        ("message_stop", {"type": "message_stop"}),
    )


RESPONSE = completed_event([])["response"]  # gpt-5, 2,000 input and 800 output tokens
# The last event's data line ends, but no blank line ends the event before the connection closes.
UNENDED_COMPLETED = (
    sse(
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": RESPONSE | {"status": "in_progress", "usage": None},
            },
        )
    )
    + b"event: response.completed\ndata: "
    + json.dumps({"type": "response.completed", "sequence_number": 1, "response": RESPONSE}).encode()
    + b"\n"
)

LATE_DELTA = DELTA | {"usage": {"output_tokens": 9000}}
# "ping " is not "ping": the SSE specification drops one space after the colon, nothing else.
SPACED_PING_DELTA = message_stream("message_delta").replace(
    b"event: message_stop", b"event: ping \ndata: " + json.dumps(LATE_DELTA).encode() + b"\n\nevent: message_stop"
)
SPACED_PING_COST = (1000 * 1 + 9000 * 5) / Decimal(1_000_000)


def inserted_before_stop(event: bytes) -> bytes:
    return message_stream("message_delta").replace(b"event: message_stop", event + b"event: message_stop")


LATE_DATA = b"data: " + json.dumps(LATE_DELTA).encode() + b"\n"
OVERLOADED = b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n'


ANSWERS = {
    "spaced-ping-delta": stream_answer(SPACED_PING_DELTA),
    "renamed-delta": stream_answer(message_stream("message_update")),
    "unended-completed": stream_answer(UNENDED_COMPLETED),
    "overloaded-untyped": json_answer(b"529", b'{"error": {"type": "overloaded_error", "message": "Overloaded"}}'),
    "bare-string-error": json_answer(b"500", b'{"error": "upstream exploded"}'),
    "error-after-stop": stream_answer(message_stream("message_delta") + b"event: error\n" + OVERLOADED + b"\n"),
}
upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def anthropic_client(url: str, answer: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="sk-ant-test", base_url=url, max_retries=0, default_headers={"x-raw": answer})


def test_a_message_delta_under_another_name_is_read_by_its_type_as_the_sdk_reads_it(proxy, recorder):
    client = anthropic_client(proxy.url, "renamed-delta")
    message = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with client.messages.stream(**message) as stream:
        final = stream.get_final_message()
    assert (final.usage.output_tokens, final.stop_reason) == (15, "end_turn")
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.tokens_output, record.finish_reason) == (1000, 15, "end_turn")
    assert (record.error_type, record.cost_usd) == (None, HAIKU_COST)


def test_an_error_event_after_message_stop_fails_the_answer_as_the_sdk_raises_on_it(proxy, recorder):
    # Before, nothing after message_stop was read: a success, where the SDK raised APIStatusError.
    client = anthropic_client(proxy.url, "error-after-stop")
    message = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        with client.messages.stream(**message) as stream:
            stream.get_final_message()
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.error_message) == (200, "overloaded_error", "Overloaded")
    # The message was made whole: the provider bills it.
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (1000, 15, HAIKU_COST)


def test_an_error_event_after_message_stop_that_no_blank_line_ended_reaches_no_client():
    parser = StreamUsageParser("anthropic")
    parser.feed(message_stream("message_delta") + b"event: error\n" + OVERLOADED)
    assert (parser.result().error_type, parser.final_state().ended) == (None, True)


@pytest.mark.parametrize(("name", "counted"), [("content_block_delta", 15), ("message_update", 15), ("ping", None)])
def test_a_named_event_is_known_by_its_data_s_type_except_a_ping(name, counted):
    parser = StreamUsageParser("anthropic")
    parser.feed(message_stream(name))
    assert parser.result().output_tokens == counted


def test_a_responses_stream_whose_last_event_no_blank_line_ended_is_incomplete_as_for_the_sdk(proxy, recorder):
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", max_retries=0)
    with pytest.raises(RuntimeError, match=r"response\.completed"):
        with client.responses.stream(model="gpt-5", input="hi", extra_headers={"x-raw": "unended-completed"}) as stream:
            stream.get_final_response()
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_stream_incomplete")
    # The provider sent its usage and bills it, though the client never got the event.
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (2000, 800, GPT5_COST)


def test_a_messages_stream_whose_message_stop_no_blank_line_ended_is_whole():
    # message_stop carries nothing: an SDK that drops it shows the same message.
    parser = StreamUsageParser("anthropic")
    parser.feed(message_stream("message_delta")[: -len(b"\n\n")] + b"\n")
    assert parser.final_state().terminal_seen


@pytest.mark.parametrize(
    ("answer", "status", "error_class", "error_type", "message"),
    [
        ("overloaded-untyped", 529, anthropic.InternalServerError, "overloaded_error", "Overloaded"),
        ("bare-string-error", 500, anthropic.InternalServerError, "http_500", "upstream exploded"),
    ],
)
def test_an_anthropic_error_body_without_its_type_line_is_read(
    proxy, recorder, answer, status, error_class, error_type, message
):
    client = anthropic_client(proxy.url, answer)
    with pytest.raises(error_class) as raised:
        client.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == status
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.error_message) == (status, error_type, message)


def test_a_ping_whose_data_says_message_stop_does_not_end_the_message():
    # The SDKs skip a ping whatever its data says: the message goes on to its real delta and stop.
    ping_stop = sse(("ping", {"type": "message_stop"}))
    stream = message_stream("message_delta")
    parser = StreamUsageParser("anthropic")
    parser.feed(stream.replace(b"event: content_block_stop", ping_stop + b"event: content_block_stop", 1))
    assert (parser.result().output_tokens, parser.final_state().terminal_seen) == (15, True)


CHAT_USAGE = (
    b'data: {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [], '
    b'"usage": {"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}}\n\n'
)


@pytest.mark.parametrize(
    "done",
    [
        b"data: [DONE]\n" + CHAT_USAGE.replace(b"1000", b"9000"),  # more data in the [DONE] event
        b"data: [DONE] " + CHAT_USAGE[len(b"data: ") :].replace(b"1000", b"9000"),  # on its line
    ],
)
def test_an_event_whose_data_begins_with_done_ends_the_stream_whatever_follows_in_it(done):
    # The openai SDK stops at data that starts with [DONE]: it showed 1000 prompt tokens, no error.
    parser = StreamUsageParser("openai")
    parser.feed(CHAT_USAGE + done)
    usage, state = parser.result(), parser.final_state()
    assert (usage.input_tokens, usage.output_tokens, state.terminal_seen, state.unreadable) == (1000, 50, True, False)


ERROR_STRING = b'event: error\ndata: "overloaded"\n\n'  # an error event whatever its data says
PING_STOP = b'event: ping\ndata: {"type": "message_stop"}\n\n'  # a ping whatever its data says


@pytest.mark.parametrize(
    "stream",
    [
        message_stream("message_delta"),
        message_stream("message_update"),
        message_stream("message_delta").replace(b"event: content_block_stop", PING_STOP + b"event: content_block_stop"),
        message_stream("message_delta").replace(
            b"event: content_block_stop", ERROR_STRING + b"event: content_block_stop"
        ),
        message_stream("message_delta").replace(b"\n", b"\r\n"),
        message_stream("message_delta")
        .replace(b"event: message_delta\ndata: ", b"data: ")
        .replace(b"\n\nevent: message_stop", b"\nevent: message_delta\n\nevent: message_stop"),  # a name after its data
        inserted_before_stop(b"event: message_delta\n" + LATE_DATA + b"event: ping\n\n"),
        inserted_before_stop(OVERLOADED + b"event: error\r\n\r\n"),
        inserted_before_stop(b"event:\n" + LATE_DATA + b"\n"),
        inserted_before_stop(b"event: message_delta\nevent\n" + LATE_DATA + b"\n"),
    ],
)
@pytest.mark.parametrize("size", [1, 2, 7])
def test_an_event_s_name_is_known_however_the_stream_is_cut_into_reads(stream, size):
    whole, pieces = StreamUsageParser("anthropic"), StreamUsageParser("anthropic")
    whole.feed(stream)
    for start in range(0, len(stream), size):
        pieces.feed(stream[start : start + size])
    assert (pieces.result(), pieces.final_state()) == (whole.result(), whole.final_state())


def test_a_message_start_after_the_first_is_ignored_as_the_sdk_ignores_it():
    # Counted, its placeholder counts (500 in, 1 out) would have replaced the message's own.
    again = sse(
        (
            "message_update",
            {"type": "message_start", "message": MESSAGE | {"usage": {"input_tokens": 500, "output_tokens": 1}}},
        )
    )
    stream = message_stream("message_delta")
    parser = StreamUsageParser("anthropic")
    parser.feed(stream.replace(b"event: message_stop", again + b"event: message_stop"))
    assert (parser.result().input_tokens, parser.result().output_tokens) == (1000, 15)


def test_an_event_whose_data_holds_a_message_stop_deeper_down_does_not_end_the_message():
    deep = sse(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "message_stop"}}))
    parser = StreamUsageParser("anthropic")
    parser.feed(
        message_stream("message_delta").replace(b"event: content_block_stop", deep + b"event: content_block_stop")
    )
    assert (parser.result().output_tokens, parser.final_state().terminal_seen) == (15, True)


def test_a_responses_stream_read_no_further_than_done_as_the_sdk_reads_it():
    completed = sse(("response.completed", {"type": "response.completed", "sequence_number": 2, "response": RESPONSE}))
    parser = StreamUsageParser("openai", "responses")
    parser.feed(UNENDED_COMPLETED.split(b"event: response.completed")[0] + b"data: [DONE]\n\n" + completed)
    usage, state = parser.result(), parser.final_state()
    assert (usage.input_tokens, state.terminal_seen) == (None, False)  # the client never got the response


def test_a_message_stop_with_more_in_its_data_still_ends_the_message():
    padded = sse(("message_stop", {"type": "message_stop", "pad": "x" * 5000}))
    parser = StreamUsageParser("anthropic")
    parser.feed(message_stream("message_delta").replace(sse(("message_stop", {"type": "message_stop"})), padded))
    assert (parser.result().output_tokens, parser.final_state().terminal_seen) == (15, True)


def test_an_event_name_is_read_as_the_sse_specification_reads_it_as_the_sdk_does(proxy, recorder):
    client = anthropic_client(proxy.url, "spaced-ping-delta")
    message = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with client.messages.stream(**message) as stream:
        final = stream.get_final_message()
    assert final.usage.output_tokens == 9000
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_output, record.error_type, record.cost_usd) == (9000, None, SPACED_PING_COST)


@pytest.mark.parametrize(
    ("stream", "output", "error_type", "ended"),
    [
        (inserted_before_stop(LATE_DATA + b"\n"), 15, None, True),  # unnamed: the SDKs skip it
        (inserted_before_stop(OVERLOADED + b"\n"), 15, None, True),
        (inserted_before_stop(LATE_DATA + b"event: ping\n\n"), 15, None, True),  # its name comes after its data
        (inserted_before_stop(b"event: error \n" + LATE_DATA + b"\n"), 9000, None, True),  # not "error"
        (inserted_before_stop(b"event:error\r\n" + OVERLOADED + b"\n"), 15, "overloaded_error", True),
        (message_stream("message_delta").replace(b"event: message_stop", b"event: ping "), 15, None, True),
        (message_stream("message_delta").replace(b"event: message_stop\n", b""), 15, None, False),  # no stop
        (inserted_before_stop(b"event:\n" + LATE_DATA + b"\n"), 15, None, True),  # "" is no name to the SDKs
        (inserted_before_stop(b"event: message_delta\n" + OVERLOADED + b"\n"), 15, None, True),  # not "error"
        (inserted_before_stop(b"event: message_delta\nevent\n" + LATE_DATA + b"\n"), 15, None, True),
        (message_stream("message_delta").replace(b"event: message_stop", b"event:"), 15, None, False),
        # The SDK hands on a named event without data too, and raises on the name: before, a success.
        (inserted_before_stop(b"event: error\n\n"), 15, "stream_error", True),
        (inserted_before_stop(b"event: error\r\n\r\n"), 15, "stream_error", True),
        (
            message_stream("message_delta").split(b"event: message_stop")[0] + b"event: error\n\n",
            15,
            "stream_error",
            True,
        ),
    ],
)
def test_events_are_known_by_their_names_as_the_anthropic_sdk_knows_them(stream, output, error_type, ended):
    parser = StreamUsageParser("anthropic")
    parser.feed(stream)
    usage, state = parser.result(), parser.final_state()
    assert (usage.output_tokens, usage.error_type, state.terminal_seen) == (output, error_type, ended)


@pytest.mark.parametrize(
    ("reads", "output", "error_type"),
    [
        ([LATE_DATA, b"event: message_delta\n\n"], 9000, None),  # named after its data, in a later read
        ([b"event: message_delta\n" + LATE_DATA, b"event: ping\n\n"], 15, None),  # renamed a ping there
        ([OVERLOADED, b"event: error\n\n"], 15, "overloaded_error"),
        ([LATE_DATA, b"event: message_delta\n", b"\n"], 9000, None),
        ([b"event: error\n", b"\n"], 15, "stream_error"),  # an error event without data, ended in a later read
        (
            [
                b"event: error\n",
                b"data: " + json.dumps({"type": "error", "error": {"type": "overloaded_error"}}).encode() + b"\n\n",
            ],
            15,
            "overloaded_error",
        ),
    ],
)
def test_an_event_named_in_a_later_read_than_its_data_gets_its_last_name(reads, output, error_type):
    before, after = message_stream("message_delta").split(b"event: message_stop")
    parser = StreamUsageParser("anthropic")
    for read in [before, *reads, b"event: message_stop" + after]:
        parser.feed(read)
    assert (parser.result().output_tokens, parser.result().error_type) == (output, error_type)
