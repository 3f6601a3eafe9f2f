"""An event whose data the client's SDK decodes and cannot fails the answer, as the SDK raises on it; events
the SDK never decodes (Anthropic's unnamed events and pings) may carry anything.

Before, only the events carrying usage were decoded: a broken content delta left a success on record,
with the SDK's JSONDecodeError on the client's side."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest

from .raw_upstream import stream_answer, upstream_and_proxy_fixtures
from .test_sdk_agreement import HAIKU_COST, message_stream
from .test_stream_events import CHAT_COST, CHAT_STREAM, parse

BROKEN_DELTA = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"ty\n\n'
ANTHROPIC_BROKEN = message_stream("message_delta").replace(
    b"event: content_block_stop", BROKEN_DELTA + b"event: content_block_stop", 1
)
CHAT_BROKEN = CHAT_STREAM.replace(b"data: [DONE]", b'data: {"id": "c", "choices": [{"delta": \n\ndata: [DONE]', 1)

BROKEN_END = ANTHROPIC_BROKEN.index(BROKEN_DELTA) + len(BROKEN_DELTA)
upstream, proxy = upstream_and_proxy_fixtures(
    {
        "anthropic-broken": stream_answer(ANTHROPIC_BROKEN),
        # The rest comes later, as a provider streaming on sends it: the SDK has raised and hung up by then.
        "anthropic-broken-paced": [stream_answer(ANTHROPIC_BROKEN[:BROKEN_END]), 0.5, ANTHROPIC_BROKEN[BROKEN_END:]],
        "chat-broken": stream_answer(CHAT_BROKEN),
        # A last line no line end closed, after the end: the SDKs decode every line they read as UTF-8 text.
        "anthropic-bytes-after-stop": stream_answer(message_stream("message_delta") + b"\xff"),
        "chat-bytes-after-done": stream_answer(CHAT_STREAM + b"\xff"),
    }
)


def stream_failing_to_decode(proxy, recorder, answer: str):
    """The record of an Anthropic stream the SDK raises on, as it cannot decode one of its events."""
    client = anthropic.Anthropic(
        api_key="sk-ant-test", base_url=proxy.url, max_retries=0, default_headers={"x-raw": answer}
    )
    message = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(json.JSONDecodeError):
        with client.messages.stream(**message) as stream:
            stream.get_final_message()
    [record] = recorder.wait_for_ends(1)
    return record


def test_a_broken_content_delta_fails_the_answer_the_anthropic_sdk_raises_on(proxy, recorder):
    record = stream_failing_to_decode(proxy, recorder, "anthropic-broken")
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_stream")
    # The message was made and its usage sent whole: the provider bills it.
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (1000, 15, HAIKU_COST)


def test_a_client_whose_sdk_raised_on_a_broken_event_and_hung_up_is_no_client_that_left(proxy, recorder):
    record = stream_failing_to_decode(proxy, recorder, "anthropic-broken-paced")
    # Before: 499 client_disconnected, the provider's broken stream blamed on the client.
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_stream")


def test_a_broken_chat_chunk_fails_the_answer_the_openai_sdk_raises_on(proxy, recorder):
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", max_retries=0)
    chunks = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        extra_headers={"x-raw": "chat-broken"},
    )
    with pytest.raises(json.JSONDecodeError):
        list(chunks)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.cost_usd) == (200, "upstream_invalid_stream", CHAT_COST)


def test_bytes_that_are_not_text_after_message_stop_fail_the_answer_as_the_anthropic_sdk_reads_to_the_end(
    proxy, recorder
):
    client = anthropic.Anthropic(
        api_key="sk-ant-test",
        base_url=proxy.url,
        max_retries=0,
        default_headers={"x-raw": "anthropic-bytes-after-stop"},
    )
    message = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(UnicodeDecodeError):
        with client.messages.stream(**message) as stream:
            stream.get_final_message()
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.cost_usd) == (200, "upstream_invalid_stream", HAIKU_COST)


def test_bytes_that_are_not_text_after_done_reach_no_openai_sdk(proxy, recorder):
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    extra = {"x-raw": "chat-bytes-after-done"}
    assert list(client.chat.completions.create(model="gpt-4o", messages=messages, stream=True, extra_headers=extra))
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.cost_usd) == (200, None, CHAT_COST)


@pytest.mark.parametrize(
    "event",
    [
        b"data: not json, and unnamed\n\n",
        b"event: ping\ndata: not json either\n\n",
        b"event: content_block_delta\ndata:\n\n",  # empty data: skipped
        b'event: content_block_delta\ndata: {"type": "content_block_delta",\ndata: "index": 0}\n\n',  # two lines
        b'event: content_block_delta\r\ndata: {"type": "content_block_delta", "index": 0} \r\n\r\n',
    ],
)
def test_events_the_anthropic_sdk_skips_or_reads_whole_leave_the_answer_a_success(event):
    stream = message_stream("message_delta").replace(b"event: content_block_stop", event + b"event: content_block_stop")
    for size in (len(stream), 7):
        parser = parse("anthropic", [stream[start : start + size] for start in range(0, len(stream), size)])
        assert not parser.final_state().unreadable and parser.result().output_tokens == 15


def test_an_openai_event_of_any_name_is_decoded_as_the_sdk_decodes_it():
    named = CHAT_STREAM.replace(b"data: [DONE]", b"event: anything\ndata: {broken\n\ndata: [DONE]", 1)
    assert parse("openai", [named]).final_state().unreadable
    assert not parse("openai", [CHAT_STREAM]).final_state().unreadable
    # The openai SDK stops at [DONE]: what follows it in the same read is never decoded.
    assert not parse("openai", [CHAT_STREAM + b"data: not json\n\n"]).final_state().unreadable


@pytest.mark.parametrize("after", [b"event: message_delta\ndata: {not json\n\n", b"event: foo\ndata: nope\n\n"])
def test_an_event_after_message_stop_the_sdk_cannot_decode_fails_the_answer(after):
    # The SDKs read on to the stream's end, decoding every named event: they raise on these.
    parser = parse("anthropic", [message_stream("message_delta") + after])
    assert parser.final_state().unreadable and parser.result().output_tokens == 15


@pytest.mark.parametrize(
    ("data", "unreadable"),
    [
        (b'{"type": "content_block_delta", "delta": {"text": "\xff\xfe"', True),  # invalid UTF-8, cut short
        (b'{"type": "content_block_delta", "delta": {"text": "\x1b[31m"}} \x00', True),  # a control byte after
        (b"NaN", False),  # what the SDKs' json.loads reads
        # 100,000 digits: the SDKs' json.loads refuses past 4,300, ccproxy's lenient decoder reads it (a known gap)
        (b'{"type": "content_block_delta", "index": ' + b"9" * 100_000 + b"}\t", None),
        (b"[" * 100_000, True),
    ],
    ids=range(5),
)
def test_hostile_event_data_is_judged_as_the_sdk_would_without_failing_the_reader(data, unreadable):
    event = b"event: content_block_delta\ndata: " + data + b"\n\n"
    stream = message_stream("message_delta").replace(b"event: content_block_stop", event + b"event: content_block_stop")
    parser = parse("anthropic", [stream])
    assert unreadable is None or parser.final_state().unreadable is unreadable
    assert parser.result().output_tokens == 15


CUT_TEXT = b'{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "He'


@pytest.mark.parametrize(
    "event",
    [
        # Two data lines joined inside a string: "He\nllo" holds a raw newline, which json.loads refuses.
        b"event: content_block_delta\ndata: " + CUT_TEXT + b'\ndata:llo"}}\n\n',
        # The anthropic SDK has no [DONE]: it decodes a named one, and reads on past an unnamed one.
        b"event: content_block_delta\ndata: [DONE]\n\n",
        b"data: [DONE]\n\nevent: content_block_delta\ndata: " + CUT_TEXT + b"\n\n",
    ],
    ids=["lines-joined-inside-a-string", "named-done", "after-unnamed-done"],
)
def test_events_the_anthropic_sdk_raises_on_fail_the_answer(event):
    stream = message_stream("message_delta").replace(b"event: content_block_stop", event + b"event: content_block_stop")
    for size in (len(stream), 7):
        parser = parse("anthropic", [stream[start : start + size] for start in range(0, len(stream), size)])
        assert parser.final_state().unreadable and parser.result().output_tokens == 15  # before: a success


def test_an_empty_openai_event_fails_the_answer_as_the_openai_sdk_decodes_it():
    # The openai SDK hands json.loads("") every event but [DONE]: a bare data line is a JSONDecodeError.
    empty = CHAT_STREAM.replace(b"data: [DONE]", b"data:\n\ndata: [DONE]", 1)
    assert parse("openai", [empty]).final_state().unreadable  # before: skipped, as the anthropic SDK skips it
    lines = CHAT_STREAM.replace(b"\n", b"\r\n")  # the same stream with CRLF line ends is still whole
    assert not parse("openai", [lines]).final_state().unreadable


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
def test_a_keep_alive_comment_is_no_event_for_the_openai_sdk(line_end):
    # Alone between events, a comment ends in a blank line but makes no event: nothing is decoded.
    stream = CHAT_STREAM.replace(b"data: [DONE]", b": keep-alive\n\ndata: [DONE]", 1).replace(b"\n", line_end)
    assert not parse("openai", [stream]).final_state().unreadable  # before: an empty event, undecodable


@pytest.mark.parametrize("other_line", [b": }\n", b"id: }\n"])
def test_a_cut_delta_beside_another_line_ending_in_a_brace_fails_the_answer(other_line):
    # The comment's or id's "}" made the data lines and the lines ending in "}" as many: the cut went unread.
    event = b"event: content_block_delta\ndata: " + CUT_TEXT + b"\n" + other_line + b"\n"
    stream = message_stream("message_delta").replace(b"event: content_block_stop", event + b"event: content_block_stop")
    parser = parse("anthropic", [stream])
    assert parser.final_state().unreadable and parser.result().output_tokens == 15


def test_a_named_openai_event_without_data_fails_the_answer_as_the_openai_sdk_decodes_it():
    # The openai SDK hands on an event that has a name and no data, and json.loads("") raises.
    head, done, tail = CHAT_STREAM.partition(b"data: [DONE]")
    assert parse("openai", [head, b"event: ping\n\n", done + tail]).final_state().unreadable  # a read of its own
    # The anthropic SDK skips a ping, data or none.
    ping = message_stream("message_delta").replace(
        b"event: content_block_stop", b"event: ping\n\nevent: content_block_stop"
    )
    assert not parse("anthropic", [ping]).final_state().unreadable
