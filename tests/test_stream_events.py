"""Events as the SSE specification reads them, and streams that end in ways the SDKs still accept.

An event's data may come in many ``data:`` lines, with comments and other fields between
them; the SDKs join them, and so must the record. A stream may break off after its last
event, or come unlabelled; its last event may be too large to hold. Streams are written
from the providers' references (Responses' ``response.completed``, Chat Completions'
usage chunk, Messages' ``message_delta``) and sent by a raw upstream.
"""

from __future__ import annotations

import json
import random
from decimal import Decimal

import httpx
import openai
import pytest

from ccproxy_core.accounting.sse_parser import DEFAULT_MAX_LINE_BYTES, DataJoiner
from ccproxy_core.accounting.usage import StreamUsageParser
from ccproxy_core.providers.openai_responses import ResponsesStreamReader

from .raw_upstream import upstream_and_proxy_fixtures

OUTPUT_TEXT = {
    "id": "msg_1",
    "type": "message",
    "status": "completed",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Hi", "annotations": []}],
}


def completed_event(output: list[dict], sequence: int = 9) -> dict:
    return {
        "type": "response.completed",
        "sequence_number": sequence,
        "response": {
            "id": "resp_1",
            "object": "response",
            "created_at": 1741476542,
            "status": "completed",
            "model": "gpt-5-2025-08-07",
            "output": output,
            "usage": {
                "input_tokens": 2000,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": 800,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 2800,
            },
        },
    }


GPT5_COST = (2000 * Decimal("1.25") + 800 * 10) / 1_000_000  # $1.25 / $10 per million tokens


def delta_event(text: str, sequence: int) -> bytes:
    event = {
        "type": "response.output_text.delta",
        "sequence_number": sequence,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": text,
    }
    return b"event: response.output_text.delta\ndata: " + json.dumps(event).encode() + b"\n\n"


def event_in_lines(event: dict, between: bytes = b"") -> bytes:
    """``event`` pretty-printed, one ``data:`` line per line of JSON, ``between`` after each."""
    lines = json.dumps(event, indent=1).encode().split(b"\n")
    return b"event: " + event["type"].encode() + b"\n" + b"".join(b"data: " + line + b"\n" + between for line in lines)


def responses_stream(last_event: bytes) -> bytes:
    return delta_event("Hi", 4) + last_event + b"\n"


def chunks(data: bytes, seed: int, max_size: int) -> list[bytes]:
    rng, position, pieces = random.Random(seed), 0, []
    while position < len(data):
        size = rng.randint(1, max_size)
        pieces.append(data[position : position + size])
        position += size
    return pieces


def parse(service_type: str, pieces: list[bytes], reader: str = "usage") -> StreamUsageParser:
    parser = StreamUsageParser(service_type, reader)
    for piece in pieces:
        parser.feed(piece)
    return parser


# --- Events over many lines ------------------------------------------------------------

MANY_ITEMS = [OUTPUT_TEXT | {"id": f"msg_{number}"} for number in range(12_000)]
PRETTY_COMPLETED = responses_stream(event_in_lines(completed_event(MANY_ITEMS)))


@pytest.mark.parametrize("max_chunk", [1 << 20, 65536, 4096])
def test_an_event_in_thousands_of_data_lines_is_read_whole(max_chunk):
    assert len(PRETTY_COMPLETED) > 2 * 1024 * 1024 and PRETTY_COMPLETED.count(b"\ndata: ") > 100_000
    parser = parse("openai", chunks(PRETTY_COMPLETED, 3, max_chunk), reader="responses")
    usage, state = parser.result(), parser.final_state()
    assert (usage.input_tokens, usage.output_tokens, usage.response_model) == (2000, 800, "gpt-5-2025-08-07")
    assert state.terminal_seen and not state.unreadable and not parser.lost


INTERRUPTIONS = [b": keep-alive\n", b"id: 7\n", b"retry: 3000\n", b":\n"]


@pytest.mark.parametrize("between", INTERRUPTIONS)
def test_comments_and_fields_between_the_data_lines_of_one_event_are_skipped(between):
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 50},
    }
    stream = (
        b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1", "type": "message", '
        b'"role": "assistant", "model": "claude-sonnet-4-5", "content": [], '
        b'"usage": {"input_tokens": 100, "output_tokens": 1}}}\n\n'
        + event_in_lines(message_delta, between)
        + b"\n"
        + b'event: message_stop\ndata: {"type": "message_stop"}\n\n'
    )
    for cut in range(0, len(stream), 7):
        parser = parse("anthropic", [stream[:cut], stream[cut:]])
        usage = parser.result()
        assert (usage.input_tokens, usage.output_tokens) == (100, 50)
        assert parser.final_state().terminal_seen and not parser.final_state().unreadable


def chat_chunk(choices: list, usage: dict | None = None, model: str = "gpt-4o") -> dict:
    """A Chat Completions stream chunk; the last one of a stream with ``include_usage`` has ``usage``."""
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model, "choices": choices}
    return chunk | ({"usage": usage} if usage else {})


@pytest.mark.parametrize("between", INTERRUPTIONS)
def test_a_chat_usage_chunk_interrupted_by_a_comment_is_read(between):
    usage = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    text = json.dumps(chat_chunk([], usage, model="gpt-4o-2024-08-06")).encode()
    half = text.index(b'"usage"')
    stream = b"data: " + text[:half] + b"\n" + between + b"data: " + text[half:] + b"\n\ndata: [DONE]\n\n"
    parser = parse("openai", [stream])
    assert (parser.result().input_tokens, parser.result().output_tokens) == (1200, 300)
    assert parser.final_state().terminal_seen and not parser.final_state().unreadable


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 4])
def test_a_byte_order_mark_before_the_first_event_is_dropped_as_the_sse_specification_says(cut):
    # Before, the mark made the first line no data: line, so the first chunk's token went unseen (no TTFT).
    first = chat_chunk([{"index": 0, "delta": {"content": "Hi"}}])
    last = chat_chunk([], {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
    events = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in (first, last))
    stream = b"\xef\xbb\xbf" + events + b"data: [DONE]\n\n"
    parser = parse("openai", [stream[:cut], stream[cut:]])
    assert parser.state.first_token_seen and parser.final_state().terminal_seen
    assert (parser.result().input_tokens, parser.result().output_tokens) == (9, 2)


def test_an_event_cut_off_inside_its_data_lines_keeps_what_ended_before_it():
    stream = PRETTY_COMPLETED[: len(PRETTY_COMPLETED) // 2]
    parser = parse("openai", chunks(stream, 5, 65536), reader="responses")
    assert parser.result().output_tokens is None and not parser.final_state().terminal_seen


def test_an_event_whose_data_outgrows_the_limit_is_dropped_and_said_so():
    joiner = DataJoiner(max_bytes=100)
    assert joiner.join(b"data: " + b"x" * 60 + b"\ndata: " + b"y" * 60 + b"\n") == b""
    assert joiner.join(b"data: z\n\ndata: {}\n\n") == b"\ndata: {}\n\n"
    assert joiner.dropped_events == 1


def test_a_comment_too_large_to_read_loses_nothing():
    stream = b": " + b"x" * (DEFAULT_MAX_LINE_BYTES + (2 << 20)) + b"\n" + PRETTY_COMPLETED
    parser = parse("openai", chunks(stream, 2, 1 << 20), reader="responses")
    assert not parser.lost and parser.result().output_tokens == 800


def test_the_parser_says_when_a_line_was_too_large_to_read():
    huge = b'data: {"type": "response.completed", "pad": "' + b"x" * (DEFAULT_MAX_LINE_BYTES + (2 << 20)) + b'"}\n\n'
    parser = parse("openai", chunks(huge, 1, 1 << 20), reader="responses")
    assert parser.lost and parser.result().output_tokens is None


# --- The first token -------------------------------------------------------------------


def test_an_empty_responses_delta_is_not_the_first_token():
    parser = StreamUsageParser("openai", "responses")
    assert parser.feed(delta_event("", 3)) is False
    assert parser.feed(delta_event("Hi", 4)) is True


def response_event(kind: str, status: str, tier: str, sequence: int) -> bytes:
    response = {"id": "resp_1", "object": "response", "status": status, "model": "gpt-5-mini", "service_tier": tier}
    event = {"type": kind, "sequence_number": sequence, "response": response}
    return b"event: " + kind.encode() + b"\ndata: " + json.dumps(event).encode() + b"\n\n"


def test_a_responses_stream_cut_before_its_end_records_no_tier_the_request_only_asked_for():
    # response.created and response.in_progress echo the tier asked for ("auto", "priority");
    # only the finished response says which one served it.
    begun = response_event("response.created", "in_progress", "auto", 0)
    begun += response_event("response.in_progress", "in_progress", "priority", 1) + delta_event("Hi", 2)
    assert parse("openai", [begun], "responses").result().service_tier is None
    finished = begun + event_in_lines(completed_event([OUTPUT_TEXT]) | {"sequence_number": 3})
    finished = finished.replace(b'"status": "completed",', b'"status": "completed", "service_tier": "flex",', 1)
    assert parse("openai", [finished + b"\n"], "responses").result().service_tier == "flex"


# --- Through the proxy -----------------------------------------------------------------

BIG_IMAGE = {"id": "ig_1", "type": "image_generation_call", "status": "completed", "result": "QUFB" * (5 << 20)}
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
CHAT_STREAM = (
    b'data: {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [{"index": 0,'
    b' "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]}\n\n'
    b'data: {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-2024-08-06", "choices": [], '
    b'"usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}}\n\n'
    b"data: [DONE]\n\n"
)
CHAT_COST = (1200 * Decimal("2.5") + 300 * 10) / 1_000_000  # gpt-4o-2024-08-06: $2.50 / $10 per million


CHAT_JSON = json.dumps(
    {
        "id": "c",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500},
    }
).encode()
MESSAGE_START = (
    b'event: message_start\ndata: {"type": "message_start", "message": {"id": "msg_1", "type": "message", '
    b'"role": "assistant", "model": "claude-sonnet-4-5", "content": [], '
    b'"usage": {"input_tokens": 1000, "output_tokens": 1}}}\n\n'
)
HUGE_DELTA = (
    b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {"type": '
    b'"text_delta", "text": "' + b"x" * (DEFAULT_MAX_LINE_BYTES + (1 << 20)) + b'"}}\n\n'
)
OVERLOADED = (
    b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
)
HALF_STOP = (
    b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
    b'"usage": {"output_tokens": 500}}\n\nevent: message_stop\ndata: {"type": "message_stop"'
)


def sized(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(body) + body


ANSWERS = {
    "completed-too-large": sized(
        responses_stream(b"data: " + json.dumps(completed_event([BIG_IMAGE])).encode()) + b"\n"
    ),
    # The whole answer and [DONE], then the connection closes before the chunked body's last chunk.
    "cut-after-done": [CHUNKED_HEAD + b"%x\r\n" % len(CHAT_STREAM) + CHAT_STREAM + b"\r\n"],
    "unlabelled-json": b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(CHAT_JSON) + CHAT_JSON,
    "error-after-huge-event": sized(MESSAGE_START + HUGE_DELTA + OVERLOADED),
    # The terminal event half sent (no blank line ends it), then the connection is cut.
    "half-terminal": [CHUNKED_HEAD + b"%x\r\n" % len(MESSAGE_START + HALF_STOP) + MESSAGE_START + HALF_STOP + b"\r\n"],
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)
CHAT_BODY = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def test_a_stream_whose_last_event_is_too_large_to_read_is_unpriced_not_incomplete(proxy, recorder):
    body = {"model": "gpt-5", "stream": True, "input": "draw"}
    headers = {"authorization": "Bearer sk-test", "x-raw": "completed-too-large"}
    response = httpx.post(proxy.url + "/v1/responses", json=body, headers=headers, timeout=30)
    assert response.content == ANSWERS["completed-too-large"].split(b"\r\n\r\n", 1)[1]
    [record] = recorder.wait_for_ends(1, timeout=30)
    assert (record.status_code, record.error_type, record.priced, record.cost_usd) == (200, None, False, None)
    assert (record.tokens_input, record.tokens_output) == (None, None)


def test_a_stream_cut_after_its_last_event_is_whole_for_the_client_and_the_record(proxy, recorder):
    client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", default_headers={"x-raw": "cut-after-done"})
    received = list(client.chat.completions.create(**CHAT_BODY))
    assert received[-1].usage.completion_tokens == 300
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.tokens_output) == (200, None, 300)
    assert record.cost_usd == CHAT_COST


def test_an_unlabelled_json_answer_to_a_streamed_request_is_priced(proxy, recorder):
    headers = {"authorization": "Bearer sk-test", "x-raw": "unlabelled-json"}
    response = httpx.post(proxy.url + "/v1/chat/completions", json=CHAT_BODY, headers=headers, timeout=10)
    assert response.content == CHAT_JSON
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.cost_usd) == (200, None, CHAT_COST)


def test_an_error_event_after_an_event_too_large_to_read_is_the_record_s_error(proxy, recorder):
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "error-after-huge-event"}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": True, "messages": []}
    response = httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=30)
    assert response.content.endswith(OVERLOADED)
    [record] = recorder.wait_for_ends(1, timeout=30)
    assert (record.status_code, record.error_type) == (200, "overloaded_error")
    assert (record.tokens_input, record.tokens_output, record.priced) == (None, None, False)  # unknown, not 1000/1


def test_a_stream_cut_inside_its_terminal_event_is_cut_for_the_client_and_the_record(proxy, recorder):
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": "half-terminal"}
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": True, "messages": []}
    with pytest.raises(httpx.RemoteProtocolError):
        with httpx.stream("POST", proxy.url + "/v1/messages", json=body, headers=headers, timeout=10) as response:
            for _ in response.iter_bytes():
                pass
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_stream_aborted")


def test_a_stream_cut_inside_its_last_line_has_that_line_read_once(monkeypatch):
    # result() and final_state() both read the unfinished rest; a 16 MiB last line is read once, not twice.
    reads = []
    read_block = ResponsesStreamReader.read_block
    monkeypatch.setattr(ResponsesStreamReader, "read_block", lambda *args: reads.append(1) or read_block(*args))
    last_line = b"data: " + json.dumps(completed_event([OUTPUT_TEXT])).encode()
    parser = parse("openai", [delta_event("Hi", 4), last_line], reader="responses")
    reads.clear()
    usage, state = parser.result(), parser.final_state()
    # Its usage counts (the provider billed it); the event itself never reached the client (below).
    assert (usage.output_tokens, state.terminal_seen, len(reads)) == (800, False, 1)
    assert parser.result() is not usage  # each caller gets its own copy


# --- What only a dispatched event says -------------------------------------------------

ANTHROPIC_HEAD = MESSAGE_START + (
    b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
    b'"usage": {"output_tokens": 200}}\n\n'
)


def test_a_comment_naming_the_last_event_does_not_end_the_stream():
    parser = parse("anthropic", [ANTHROPIC_HEAD + b': {"type":"message_stop"}\n\n'])
    assert not parser.state.terminal_seen and not parser.final_state().terminal_seen


def test_a_last_event_cut_inside_its_data_does_not_end_the_stream():
    cut = parse("anthropic", [ANTHROPIC_HEAD + b'event: message_stop\ndata: {"type": "message_stop"'])
    assert not cut.final_state().terminal_seen
    whole = parse("anthropic", [ANTHROPIC_HEAD + b'event: message_stop\ndata: {"type": "message_stop"}'])
    assert whole.final_state().terminal_seen  # whole data without its line end: the provider had finished


def test_data_lines_cut_inside_a_json_string_are_no_event_as_for_the_sdks():
    # SSE joins data lines with a newline: inside a JSON string that is an error, and the SDKs fail.
    inside = b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_\ndata: turn"}}\n\n'
    assert parse("anthropic", [MESSAGE_START + inside]).final_state().unreadable
    between = b'event: message_delta\ndata: {"type": "message_delta",\ndata: "usage": {"output_tokens": 200}}\n\n'
    parser = parse("anthropic", [MESSAGE_START + between])
    assert not parser.final_state().unreadable and parser.result().output_tokens == 200


@pytest.mark.parametrize(
    "usage",
    [
        b'"usage": {"output_tokens": 2\xff00}}',  # not UTF-8: the SDKs fail
        b'"usage": {"output_tokens": NaN}}',
        b'"usage": {"output_tokens": 1e400}}',
        b'"usage": {"output_tokens": "\x01"}}',  # a control character inside a string
    ],
)
def test_hostile_values_in_an_event_of_several_data_lines_are_read_as_on_one_line(usage):
    head = b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
    one_line = parse("anthropic", [MESSAGE_START + head + usage + b"\n\n"])
    two_lines = parse("anthropic", [MESSAGE_START + head + b"\ndata: " + usage + b"\n\n"])
    assert two_lines.final_state() == one_line.final_state() and two_lines.result() == one_line.result()
    assert two_lines.result().output_tokens in (None, 1)  # never the hostile value
