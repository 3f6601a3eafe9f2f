"""Usage extraction from SSE streams, cut at every possible place (JSON bodies: test_usage_json.py)."""

from __future__ import annotations

import json
import random

import pytest

from ccproxy_core.accounting.sse_parser import DEFAULT_MAX_LINE_BYTES, SSELineSplitter, iter_data_fields
from ccproxy_core.accounting.usage import StreamUsageParser, Usage

# Shaped like real Messages API streams: raw UTF-8 text (accents, CJK, emoji) so that
# byte-level cuts land inside multi-byte characters; a message_delta that repeats the
# input and cache counts, as the API does since 2025.
ANTHROPIC_STREAM = (
    "event: message_start\n"
    'data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message",'
    '"role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,'
    '"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":1800,'
    '"cache_read_input_tokens":12000,"cache_creation":{"ephemeral_5m_input_tokens":1800,'
    '"ephemeral_1h_input_tokens":0},"output_tokens":1,"service_tier":"standard"}}}\n'
    "\n"
    "event: content_block_start\n"
    'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n'
    "\n"
    "event: ping\n"
    'data: {"type": "ping"}\n'
    "\n"
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Héllo, 世界 🎉! "}}\n'
    "\n"
    "event: content_block_delta\n"
    'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    '"text":"The \\"usage\\" and \\"error\\" words and message_delta in text are harmless."}}\n'
    "\n"
    "event: content_block_stop\n"
    'data: {"type":"content_block_stop","index":0}\n'
    "\n"
    "event: message_delta\n"
    'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"input_tokens":25,"cache_creation_input_tokens":1800,"cache_read_input_tokens":12000,'
    '"output_tokens":321}}\n'
    "\n"
    "event: message_stop\n"
    'data: {"type":"message_stop"}\n'
    "\n"
).encode()

ANTHROPIC_EXPECTED = Usage(
    input_tokens=25,
    output_tokens=321,
    cache_read_tokens=12000,
    cache_write_tokens=1800,
    response_model="claude-sonnet-4-5-20250929",
    cache_write_1h_tokens=0,
    service_tier="standard",
    finish_reason="end_turn",
)


def _openai_chunk(delta: dict, finish: str | None = None) -> str:
    chunk = {
        "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_eb9dce56a8",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": None,
    }
    return "data: " + json.dumps(chunk, ensure_ascii=False) + "\n\n"


OPENAI_USAGE_CHUNK = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion.chunk",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [],
    "usage": {
        "prompt_tokens": 2100,
        "completion_tokens": 42,
        "total_tokens": 2142,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    },
}

OPENAI_STREAM = (
    _openai_chunk({"role": "assistant", "content": "", "refusal": None})
    + _openai_chunk({"content": "Héllo, 世界 🎉"})
    + _openai_chunk({"content": ' "usage": {} is just text'})
    + _openai_chunk({}, finish="stop")
    + "data: "
    + json.dumps(OPENAI_USAGE_CHUNK)
    + "\n\n"
    + "data: [DONE]\n\n"
).encode()

OPENAI_EXPECTED = Usage(
    input_tokens=180,
    output_tokens=42,
    cache_read_tokens=1920,
    cache_write_tokens=0,
    response_model="gpt-4o-2024-08-06",
    reasoning_tokens=0,
    service_tier="default",
    finish_reason="stop",
)

STREAMS = {"anthropic": (ANTHROPIC_STREAM, ANTHROPIC_EXPECTED), "openai": (OPENAI_STREAM, OPENAI_EXPECTED)}


def _parse(service_type: str, chunks: list[bytes]) -> Usage:
    parser = StreamUsageParser(service_type)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.result()


def _random_chunks(data: bytes, rng: random.Random, max_size: int) -> list[bytes]:
    chunks, position = [], 0
    while position < len(data):
        size = rng.randint(1, max_size)
        chunks.append(data[position : position + size])
        position += size
    return chunks


# --- Streams ---------------------------------------------------------------------------


@pytest.mark.parametrize("service_type", STREAMS)
def test_stream_in_one_chunk(service_type):
    stream, expected = STREAMS[service_type]
    assert _parse(service_type, [stream]) == expected


@pytest.mark.parametrize("service_type", STREAMS)
def test_stream_fed_one_byte_at_a_time(service_type):
    stream, expected = STREAMS[service_type]
    assert _parse(service_type, [stream[i : i + 1] for i in range(len(stream))]) == expected


@pytest.mark.parametrize("service_type", STREAMS)
def test_stream_cut_in_two_at_every_byte(service_type):
    stream, expected = STREAMS[service_type]
    for cut in range(len(stream) + 1):
        assert _parse(service_type, [stream[:cut], stream[cut:]]) == expected, f"cut at byte {cut}"


@pytest.mark.parametrize("service_type", STREAMS)
@pytest.mark.parametrize("seed", range(20))
def test_stream_in_random_chunks(service_type, seed):
    stream, expected = STREAMS[service_type]
    rng = random.Random(seed)
    assert _parse(service_type, _random_chunks(stream, rng, max_size=rng.choice([3, 17, 200]))) == expected


@pytest.mark.parametrize("service_type", STREAMS)
@pytest.mark.parametrize("line_end", [b"\r\n", b"\r"], ids=["crlf", "lone-cr"])
def test_stream_with_other_line_ends_cut_at_every_byte(service_type, line_end):
    # The SSE specification lets CRLF or a bare CR end a line; the SDKs read both.
    stream, expected = STREAMS[service_type]
    other_stream = stream.replace(b"\n", line_end)
    assert _parse(service_type, [other_stream]) == expected
    for cut in range(len(other_stream) + 1):
        assert _parse(service_type, [other_stream[:cut], other_stream[cut:]]) == expected, f"cut at byte {cut}"
    assert _parse(service_type, [other_stream[i : i + 1] for i in range(len(other_stream))]) == expected


def test_anthropic_stream_cut_off_after_message_start_keeps_its_input_and_knows_no_output():
    # message_start's output count is a placeholder (1): before, it was counted and the answer priced.
    cut = ANTHROPIC_STREAM.index(b"event: content_block_delta")
    usage = _parse("anthropic", [ANTHROPIC_STREAM[:cut]])
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (
        25,
        None,
        12000,
        1800,
    )
    assert usage.bad_counts and usage.response_model == "claude-sonnet-4-5-20250929"


def test_anthropic_stream_cut_after_its_message_delta_keeps_the_output_count():
    cut = ANTHROPIC_STREAM.index(b"event: message_stop")
    usage = _parse("anthropic", [ANTHROPIC_STREAM[:cut]])
    assert usage == _parse("anthropic", [ANTHROPIC_STREAM])
    assert usage.output_tokens is not None and not usage.bad_counts


def test_anthropic_message_delta_values_replace_earlier_ones():
    stream = (
        b"event: message_start\n"
        b'data: {"type":"message_start","message":{"model":"claude-haiku-4-5","usage":'
        b'{"input_tokens":10,"cache_read_input_tokens":0,"output_tokens":1}}}\n\n'
        b"event: message_delta\n"
        b'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":7,"cache_read_input_tokens":5}}\n\n'
        b"event: message_delta\n"
        b'data: {"type":"message_delta","delta":{},"usage":{"output_tokens":9,"input_tokens":null}}\n\n'
    )
    usage = _parse("anthropic", [stream])
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (10, 9, 5)
    assert usage.cache_write_tokens is None


@pytest.mark.parametrize("bad", [b"-500", b"12.5", b'"9"'])
def test_an_anthropic_message_delta_count_that_is_no_count_is_unknown_not_the_placeholder_before_it(bad):
    stream = (
        b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-haiku-4-5","usage":'
        b'{"input_tokens":10,"output_tokens":1}}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","delta":{},"usage":{"output_tokens":' + bad + b"}}\n\n"
    )
    usage = _parse("anthropic", [stream])
    assert (usage.input_tokens, usage.output_tokens, usage.bad_counts) == (10, None, True)  # before: 1


def test_anthropic_error_event_mid_stream():
    error_event = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    cut = ANTHROPIC_STREAM.index(b"event: content_block_stop")
    for chunks in ([ANTHROPIC_STREAM[:cut] + error_event], [bytes([b]) for b in ANTHROPIC_STREAM[:cut] + error_event]):
        usage = _parse("anthropic", chunks)
        assert (usage.error_type, usage.error_message) == ("overloaded_error", "Overloaded")
        assert usage.input_tokens == 25 and usage.output_tokens is None and usage.bad_counts  # before: 1, priced


@pytest.mark.parametrize(
    ("data", "error_type", "message"),
    [
        (b'{"error":{"type":"overloaded_error","message":"Overloaded"}}', "overloaded_error", "Overloaded"),
        (b'{"type":"overloaded_error","message":"Overloaded"}', "overloaded_error", "Overloaded"),
        (b'"Overloaded"', "stream_error", "Overloaded"),
        (b"", "stream_error", "the provider sent an error event without a message"),
    ],
)
def test_an_anthropic_error_event_is_an_error_whatever_its_data_says(data, error_type, message):
    # The SDKs raise on the event's name; before, an error whose data had no "type":"error" was a success.
    cut = ANTHROPIC_STREAM.index(b"event: content_block_stop")
    stream = ANTHROPIC_STREAM[:cut] + b"event: error\ndata: " + data + b"\n\n" + ANTHROPIC_STREAM[cut:]
    usage = _parse("anthropic", [stream])
    assert (usage.error_type, usage.error_message) == (error_type, message)


@pytest.mark.parametrize("data", [b"x" * 5_000_000, b"\xff\xfe not utf-8 \x00", b'{"error": ' * 50_000])
def test_an_error_event_of_hostile_data_is_an_error_with_a_short_message(data):
    cut = ANTHROPIC_STREAM.index(b"event: content_block_stop")
    usage = _parse("anthropic", [ANTHROPIC_STREAM[:cut] + b"event: error\ndata: " + data + b"\n\n"])
    assert usage.error_type == "stream_error" and 0 < len(usage.error_message) <= 1000


def test_a_ping_whose_data_reads_like_an_error_is_no_error():
    ping = b'event: ping\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    cut = ANTHROPIC_STREAM.index(b"event: content_block_stop")
    usage = _parse("anthropic", [ANTHROPIC_STREAM[:cut] + ping + ANTHROPIC_STREAM[cut:]])
    assert usage == ANTHROPIC_EXPECTED  # the SDKs skip pings: the answer is whole


def test_openai_stream_without_include_usage_still_gives_the_model():
    stream = (_openai_chunk({"content": "hi"}) + _openai_chunk({}, finish="stop") + "data: [DONE]\n\n").encode()
    expected = Usage(response_model="gpt-4o-2024-08-06", service_tier="default", finish_reason="stop")
    assert _parse("openai", [stream]) == expected


def test_openai_error_chunk_in_stream():
    stream = (
        _openai_chunk({"content": "hi"})
        + 'data: {"error": {"message": "The server had an error", "type": "server_error", "code": null}}\n\n'
    ).encode()
    usage = _parse("openai", [stream])
    assert (usage.error_type, usage.error_message) == ("server_error", "The server had an error")
    assert usage.response_model == "gpt-4o-2024-08-06"


def test_result_reads_a_last_line_that_never_got_its_line_end():
    stream = OPENAI_STREAM.replace(b"data: [DONE]\n\n", b"").rstrip(b"\n")
    assert _parse("openai", [stream]) == OPENAI_EXPECTED


def test_result_is_a_snapshot_and_asking_early_changes_nothing():
    first_line_end = OPENAI_STREAM.index(b"\n")
    parser = StreamUsageParser("openai")
    parser.feed(OPENAI_STREAM[:first_line_end])
    early = parser.result()
    assert early == Usage(response_model="gpt-4o-2024-08-06", service_tier="default")
    parser.feed(OPENAI_STREAM[first_line_end:])
    assert parser.result() == OPENAI_EXPECTED
    assert early == Usage(response_model="gpt-4o-2024-08-06", service_tier="default")


@pytest.mark.parametrize("service_type", ["anthropic", "openai", "bedrock"])
def test_garbage_streams_give_empty_usage(service_type):
    garbage = [b"\xff\xfe\x00not sse", b"data: {not json\n\n", b"data: [1, 2]\n", b'data: {"usage": 5}\n', b"\n\n"]
    usage = _parse(service_type, garbage)
    assert not usage.has_tokens and (usage.response_model, usage.error_type) == (None, None)


def test_unknown_service_type_ignores_even_a_valid_stream():
    assert _parse("bedrock", [ANTHROPIC_STREAM]) == Usage()


@pytest.mark.parametrize("service_type", STREAMS)
def test_huge_unfinished_line_is_dropped_and_parsing_goes_on(service_type):
    stream, expected = STREAMS[service_type]
    huge_line = b"data: " + b"x" * (2 * DEFAULT_MAX_LINE_BYTES) + b"\n\n"
    parser = StreamUsageParser(service_type)
    for chunk in _random_chunks(huge_line + stream, random.Random(7), max_size=65536):
        parser.feed(chunk)
        assert parser._lines._pending_bytes <= DEFAULT_MAX_LINE_BYTES
    assert parser.result() == expected
    assert parser._lines.dropped_lines == 1


# --- SSE line splitter -----------------------------------------------------------------


def test_splitter_gives_whole_lines_whatever_the_cuts():
    data = "event: a\r\ndata: é世🎉\n\ndata: two\r\n\r\nrest".encode()
    for cut in range(len(data) + 1):
        splitter = SSELineSplitter()
        block = splitter.feed(data[:cut]) + splitter.feed(data[cut:])
        assert block.replace(b"\r\n", b"\n") == "event: a\ndata: é世🎉\n\ndata: two\n\n".encode()
        assert splitter.tail == b"rest"


def test_splitter_reads_every_line_end_the_sse_specification_allows_whatever_the_cuts():
    data = b"a\rb\r\nc\nd\r\re\r\n\rrest"
    for cut in range(len(data) + 1):
        for middle in range(cut, len(data) + 1):
            splitter = SSELineSplitter()
            parts = (data[:cut], b"", data[cut:middle], data[middle:])
            block = b"".join(splitter.feed(part) for part in parts)
            assert block.replace(b"\r\n", b"\n") == b"a\nb\nc\nd\n\ne\n\n", (cut, middle)
            assert splitter.tail == b"rest"


def test_splitter_passes_a_chunk_of_whole_lines_on_without_copying():
    chunk = b"data: x\n\n"
    assert SSELineSplitter().feed(chunk) is chunk


def test_splitter_drops_only_the_overlong_line():
    splitter = SSELineSplitter(max_line_bytes=10)
    assert splitter.feed(b"ok\n0123456") == b"ok\n"
    assert splitter.feed(b"789abc") == b""
    assert splitter.tail == b""
    assert splitter.feed(b"def\nnext") == b""
    assert splitter.feed(b" line\n") == b"next line\n"
    assert splitter.dropped_lines == 1


def test_iter_data_fields_keeps_only_data_lines():
    block = b'event: x\ndata: {}\r\n: comment\ndata:{"a":1}\n\n'
    assert list(iter_data_fields(block)) == [b" {}\r", b'{"a":1}']


@pytest.mark.parametrize(
    "bad_start",
    [
        b"{'type': 'message_start', 'message': {'usage': {'input_tokens': 25}}}",  # its type hidden by the quotes
        b'{"type": "message_start", "message": {"usage": {"input_tokens": 25}}',  # cut short
    ],
)
def test_an_anthropic_stream_whose_named_usage_event_is_not_json_is_unreadable(bad_start):
    parser = StreamUsageParser("anthropic")
    for chunk in (
        b"event: message_start\ndata: " + bad_start + b"\n\n",
        b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, '
        b'"delta": {"type": "text_delta", "text": "Hi"}}\n\n',
        b'event: message_delta\ndata: {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, '
        b'"usage": {"output_tokens": 1}}\n\n',
        b'event: message_stop\ndata: {"type": "message_stop"}\n\n',
    ):
        parser.feed(chunk)
    assert parser.final_state().unreadable and parser.result().bad_counts  # the SDK fails on it; unpriced
