"""ccproxy's own time is its own: a provider slow to send its answer's body, or one that stops, is the
provider's time in the record (``upstream_duration_ms``), never ccproxy's overhead; a wait given up (a
timeout, the client gone) is the provider's time until ccproxy stopped waiting."""

from __future__ import annotations

import httpx
import pytest

from .raw_upstream import sse, stream_answer, upstream_and_proxy_fixtures

HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
REQUEST = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
MESSAGE = (
    b'{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],'
    b' "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 5}}'
)
START = {
    "type": "message_start",
    "message": {
        "id": "msg_2",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [],
        "usage": {"input_tokens": 10, "output_tokens": 1},
    },
}
END = sse(
    ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}}),
    ("message_stop", {"type": "message_stop"}),
)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
upstream, proxy = upstream_and_proxy_fixtures(
    {
        "late-body": [HEAD % len(MESSAGE), 1.0, MESSAGE],
        "stops": [HEAD % len(MESSAGE), MESSAGE[:20], 2.0],
        "slow-stream": [stream_answer(sse(("message_start", START))), 1.0, END],
        "silent": [2.0],
    }
)


def test_a_body_sent_a_second_after_its_head_is_the_provider_s_time_not_ccproxy_s(proxy, recorder):
    answer = httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "late-body"}, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert answer.status_code == 200 and record.status_code == 200
    assert record.upstream_duration_ms is not None and record.upstream_duration_ms >= 1000
    # Before: the second the body took was counted as ccproxy's own (about 1,001 ms), in the record and header.
    assert record.proxy_overhead_ms is not None and record.proxy_overhead_ms < 500
    assert float(answer.headers["x-ccproxy-overhead-ms"]) < 500


def test_an_answer_the_provider_stops_sending_is_the_provider_s_time(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url, upstream={"read_timeout_seconds": 0.5})
    answer = httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "stops"}, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, record.error_type) == (504, "upstream_timeout")
    assert record.upstream_duration_ms is not None and record.upstream_duration_ms >= 500
    assert record.proxy_overhead_ms is not None and record.proxy_overhead_ms < 250


def test_a_stream_s_overhead_ends_at_its_head_and_is_never_negative(proxy, recorder):
    stream = {**REQUEST, "stream": True}
    answer = httpx.post(
        proxy.url + "/v1/messages", json=stream, headers={**HEADERS, "x-raw": "slow-stream"}, timeout=10
    )
    [record] = recorder.wait_for_ends(1)
    assert answer.status_code == 200 and record.tokens_output == 5
    assert record.upstream_duration_ms is not None and record.upstream_duration_ms >= 1000
    assert record.proxy_overhead_ms is not None and 0 <= record.proxy_overhead_ms < 500


def test_a_provider_that_never_answers_is_waited_for_until_the_timeout(proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url, upstream={"read_timeout_seconds": 0.5})
    answer = httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "silent"}, timeout=10)
    [record] = recorder.wait_for_ends(1)
    assert (answer.status_code, record.error_type) == (504, "upstream_timeout")
    # Before: null, so timeouts never counted in the provider's share of the latency.
    assert record.upstream_duration_ms is not None and 500 <= record.upstream_duration_ms <= record.duration_ms


def test_a_whole_answer_the_client_left_during_is_waited_for_until_it_left(proxy, recorder):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(proxy.url + "/v1/messages", json=REQUEST, headers={**HEADERS, "x-raw": "late-body"}, timeout=0.3)
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (499, "client_disconnected")
    assert record.upstream_duration_ms is not None and 300 <= record.upstream_duration_ms <= record.duration_ms
