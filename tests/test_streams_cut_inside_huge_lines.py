"""A stream that stops inside a line or event too large to hold: that line never reached a client.

Lines and events over 16 MiB are skipped rather than held, and a stream that skipped one is not
held to its missing last event (the skipped part may have been it). One the stream stopped inside
never ended, so it cannot have been the last event: the stream is cut short, as any other.
"""

from __future__ import annotations

import anthropic

from ccproxy_core.accounting.sse_parser import DEFAULT_MAX_LINE_BYTES
from ccproxy_core.accounting.usage import StreamUsageParser

from .raw_upstream import raw_upstream, sse, stream_answer
from .test_sdk_agreement import MESSAGE

START = {"type": "message_start", "message": {**MESSAGE, "usage": {"input_tokens": 10, "output_tokens": 1}}}
HUGE = b"A" * (DEFAULT_MAX_LINE_BYTES + (1 << 20))


def _parsed(*chunks: bytes) -> StreamUsageParser:
    parser = StreamUsageParser("anthropic")
    for chunk in chunks:
        parser.feed(chunk)
    return parser


def test_a_line_the_stream_stopped_inside_is_no_loss():
    parser = _parsed(sse(("message_start", START)), b"event: content_block_delta\ndata: ", HUGE)
    assert not parser.lost  # before: lost, which excused the missing message_stop
    assert parser.result().input_tokens == 10 and not parser.final_state().terminal_seen


def test_an_event_the_stream_stopped_inside_is_no_loss():
    data = b"data: " + HUGE[: DEFAULT_MAX_LINE_BYTES // 2] + b"\n"
    parser = _parsed(sse(("message_start", START)), b"event: content_block_delta\n", data, data, data)
    assert not parser.lost
    assert _parsed(b"event: content_block_delta\n", data, data, b"\n").lost  # ended: what it said is unknown


def test_a_skipped_line_whose_event_ended_is_still_a_loss():
    assert _parsed(b"event: message_delta\ndata: ", HUGE, b"\n\n").lost
    assert _parsed(b"event: message_delta\ndata: ", HUGE, b"\r\n", b"\r\n").lost
    assert _parsed(b"event: message_delta\ndata: ", HUGE, b"\ndata: {}\n", b"\n").lost


def test_a_skipped_line_whose_event_the_stream_stopped_inside_is_no_loss():
    # The SDKs dispatch an event at the blank line that ends it: at the stream's end, none is.
    assert not _parsed(b"event: message_delta\ndata: ", HUGE, b"\n").lost
    assert not _parsed(b"event: message_delta\ndata: ", HUGE, b"\ndata: {}\n").lost


def test_a_stream_cut_inside_a_huge_line_is_recorded_as_cut_short(proxy_factory, recorder):
    body = sse(("message_start", START)) + b"event: content_block_delta\ndata: " + HUGE
    with raw_upstream({"": stream_answer(body)}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url)
        client = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-test", max_retries=0)
        with client.messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=[]) as stream:
            assert stream.get_final_message().stop_reason is None  # the SDK saw no end
        [record] = recorder.wait_for_ends(1)
    # Before: a success (200, no error) without its input count.
    assert (record.status_code, record.error_type) == (200, "upstream_stream_incomplete")
    assert record.tokens_input == 10 and record.cost_usd is None
