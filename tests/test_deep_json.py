"""Valid JSON beyond Python's own limits (nesting deeper than it decodes, integers longer than it converts),
from a client or a provider: the record keeps what can be read, and never calls valid JSON invalid."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import httpx
import pytest

from ccproxy_core.json_text import MAX_MEMBER_STRINGS, decode_json

from .raw_upstream import json_answer, sse, stream_answer, upstream_and_proxy_fixtures

DEEP = "[" * 100_000 + "]" * 100_000
LONG_NUMBER = "9" * 10_000
USAGE = {"input_tokens": 1_000, "output_tokens": 500}


def message(usage: str = json.dumps(USAGE)) -> bytes:
    # Valid JSON: the usage beside content nested past what Python (and orjson) decode.
    return (
        '{"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",'
        f' "content": [{{"type": "text", "text": "x", "deep": {DEEP}}}], "stop_reason": "end_turn", "usage": {usage}}}'
    ).encode()


def deep_stream() -> bytes:
    start = {
        "type": "message_start",
        "message": {"model": "claude-sonnet-4-20250514", "usage": {**USAGE, "output_tokens": 1}},
    }
    events = sse(("message_start", start))
    delta = (
        '{"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "deep": %s, "usage": {"output_tokens": 500}}'
    )
    events += b"event: message_delta\ndata: " + (delta % DEEP).encode() + b"\n\n"
    return events + sse(("message_stop", {"type": "message_stop"}))


ANSWERS = {
    "deep": json_answer(b"200 OK", message()),
    "long-count": json_answer(b"200 OK", message(f'{{"input_tokens": 1000, "output_tokens": {LONG_NUMBER}}}')),
    "deep-stream": stream_answer(deep_stream()),
    "plain": json_answer(b"200 OK", message(json.dumps(USAGE)).replace(DEEP.encode(), b"[]")),
}
SONNET_4 = (1_000 * Decimal(3) + 500 * Decimal(15)) / 1_000_000  # $3 / $15 per million tokens: $0.0105

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def send(proxy, kind: str, body: str | None = None) -> httpx.Response:
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01", "x-raw": kind}
    body = body or json.dumps({"model": "claude-sonnet-4-20250514", "max_tokens": 10, "messages": []})
    return httpx.post(proxy.url + "/v1/messages", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("kind", ["deep", "deep-stream"])
def test_an_answer_nested_deeper_than_python_decodes_keeps_its_usage_and_cost(proxy, recorder, kind):
    assert send(proxy, kind).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.tokens_input, record.tokens_output, record.cost_usd) == (1_000, 500, SONNET_4)
    assert (record.error_type, record.response_model, record.finish_reason) == (
        None,
        "claude-sonnet-4-20250514",
        "end_turn",
    )


def test_a_count_longer_than_python_converts_is_an_unknown_count_not_invalid_json(proxy, recorder):
    assert send(proxy, "long-count").status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert record.error_type is None  # valid JSON: before, "upstream_invalid_json", counted as an error
    assert (record.tokens_input, record.tokens_output, record.priced, record.cost_usd) == (1_000, None, False, None)
    assert record.response_model == "claude-sonnet-4-20250514"


@pytest.mark.parametrize(
    "body",
    [
        '{"model": "claude-sonnet-4-20250514", "max_tokens": 10, "metadata": {"n": ' + LONG_NUMBER + "}}",
        '{"messages": [{"role": "user", "content": ' + DEEP + '}], "model": "claude-sonnet-4-20250514"}',
    ],
    ids=["long-number", "deep"],
)
def test_a_request_python_cannot_decode_whole_keeps_its_model(proxy, recorder, body):
    send(proxy, "plain", body)
    [record] = recorder.wait_for_ends(1)
    assert record.model == "claude-sonnet-4-20250514"  # before: null, and counted under "unknown" in /metrics
    assert record.cost_usd == SONNET_4


def test_decoding_keeps_the_members_beside_a_deep_one_and_reads_long_integers_as_infinity():
    text = '{"a": 1, "deep": ' + DEEP + ', "s": "x,\\"}", "n": -' + LONG_NUMBER + ', "a": 2}'
    assert decode_json(text) == {"a": 2, "s": 'x,"}', "n": -math.inf}  # the last "a" wins, as in a full decode
    assert decode_json(text.encode()) == decode_json(text)
    assert decode_json(DEEP) is None  # no object: nothing to keep
    assert decode_json('{"a": 1, "deep": ' + DEEP) is None  # never closed: not JSON
    assert decode_json('{"a": 1, "deep": ' + DEEP + "} trailing") is None
    assert decode_json('{"a": 1, "deep": ' + DEEP + "}\n") == {"a": 1}
    assert decode_json('{"deep": ' + DEEP + ', "s": "]}", "t": "\\\\"}') == {"s": "]}", "t": "\\"}


@pytest.mark.parametrize(
    "text",
    [
        '{"deep": ' + DEEP + ', "a\tb": 1}',  # a key with a raw control character
        '{"deep": ' + DEEP + ', "a\\qb": 1}',  # a key with an escape JSON does not have
        '{"deep": ' + DEEP + ' "b": 2}',  # no comma between members
        '{"a": "b": "c", "deep": ' + DEEP + "}",
        '{ x "deep": ' + DEEP + "}",
        '{"deep": ' + DEEP + "}\u00a0",  # after it, a space JSON does not count as one
    ],
)
def test_text_that_is_not_json_after_a_deep_value_is_none_never_an_error(text):
    assert decode_json(text) is None  # before: a ValueError, and a 500 for the client's request
    assert decode_json(text.encode("utf-8", "surrogatepass") + b"\xff") is None  # and as bytes that are not UTF-8


def test_a_name_given_twice_keeps_the_last_value_even_when_it_is_too_deep_to_read():
    assert decode_json('{"usage": {"input_tokens": 1}, "usage": ' + DEEP + "}") == {}  # as a full decode keeps the last


def test_a_request_not_json_after_a_deep_value_is_forwarded_and_recorded(proxy, recorder):
    body = '{"model": "claude-sonnet-4-20250514", "messages": ' + DEEP + ', "a\tb": 1}'
    assert send(proxy, "plain", body).status_code == 200
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.model) == (200, None)


def test_a_deep_object_with_more_strings_than_are_stepped_over_is_not_read():
    # Stepping over each string costs the event loop about a microsecond: the scan is bounded.
    many, few = ", ".join(['"x"'] * MAX_MEMBER_STRINGS), ", ".join(['"x"'] * (MAX_MEMBER_STRINGS // 2))
    assert decode_json('{"deep": ' + DEEP + ', "few": [' + few + '], "a": 1}') == {
        "few": ["x"] * len(few.split(",")),
        "a": 1,
    }
    assert decode_json('{"deep": ' + DEEP + ', "many": [' + many + '], "a": 1}') is None
