"""Usage extraction from whole JSON bodies, and the model and stream flag of requests."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import StreamUsageParser, Usage, request_model_and_stream, usage_from_json


def test_anthropic_json_body():
    body = json.dumps(
        {
            "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-4-1-20250805",
            "content": [{"type": "tool_use", "id": "t", "name": "x", "input": {"usage": {"output_tokens": 99}}}],
            "stop_reason": "end_turn",
            "usage": {
                "input_tokens": 2095,
                "output_tokens": 503,
                "cache_creation_input_tokens": 3000,
                "cache_read_input_tokens": 1000,
                "cache_creation": {"ephemeral_5m_input_tokens": 1000, "ephemeral_1h_input_tokens": 2000},
            },
        }
    ).encode()
    assert usage_from_json("anthropic", body) == Usage(
        input_tokens=2095,
        output_tokens=503,
        cache_read_tokens=1000,
        cache_write_tokens=3000,
        response_model="claude-opus-4-1-20250805",
        cache_write_1h_tokens=2000,
        finish_reason="end_turn",
    )


def test_anthropic_error_body():
    body = (
        b'{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded '
        b'your per-minute rate limit"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}'
    )
    usage = usage_from_json("anthropic", body)
    assert usage.error_type == "rate_limit_error"
    assert usage.error_message == "Number of request tokens has exceeded your per-minute rate limit"
    assert usage.input_tokens is None and usage.response_model is None


def test_openai_json_body_moves_cached_tokens_out_of_input():
    body = json.dumps(
        {
            "id": "chatcmpl-abc",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": 10000,
                "completion_tokens": 500,
                "total_tokens": 10500,
                "prompt_tokens_details": {"cached_tokens": 4000},
            },
        }
    ).encode()
    assert usage_from_json("openai", body) == Usage(
        input_tokens=6000,
        output_tokens=500,
        cache_read_tokens=4000,
        cache_write_tokens=0,
        response_model="gpt-4o-mini-2024-07-18",
        finish_reason="stop",
    )


def test_openai_usage_without_details_has_no_cached_tokens():
    body = b'{"model": "gpt-4o", "usage": {"prompt_tokens": 12, "completion_tokens": 3}}'
    assert usage_from_json("openai", body) == Usage(
        input_tokens=12, output_tokens=3, cache_read_tokens=0, cache_write_tokens=0, response_model="gpt-4o"
    )


def test_error_fields_are_bounded():
    body = json.dumps({"error": {"type": "t" * 500, "message": "m" * 50_000}}).encode()
    usage = usage_from_json("openai", body)
    assert len(usage.error_type) == 64 and len(usage.error_message) == 1000


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null", b"[" * 100_000, b'{"usage": [1]}'],
)
@pytest.mark.parametrize("service_type", ["anthropic", "openai", "bedrock"])
def test_bad_bodies_give_empty_usage(service_type, body):
    assert usage_from_json(service_type, body) == Usage()


@pytest.mark.parametrize("bad_count", [True, -5, 3.5, -3.0, 2.0**60, "12", None])
def test_counts_that_are_not_natural_numbers_are_ignored(bad_count):
    body = json.dumps({"model": "m", "usage": {"input_tokens": bad_count, "output_tokens": 4}}).encode()
    usage = usage_from_json("anthropic", body)
    assert usage.input_tokens is None and usage.output_tokens == 4


@pytest.mark.parametrize("written", [b"1200.0", b"1.2e3", b"12E2", b"1200"])
@pytest.mark.parametrize(
    ("service_type", "model", "key", "price"),
    [("anthropic", "claude-haiku-4-5", "input_tokens", 1), ("openai", "gpt-4o-mini", "prompt_tokens", "0.15")],
)
def test_a_whole_number_written_with_a_fraction_or_an_exponent_is_that_count(service_type, model, key, price, written):
    # JSON has one kind of number: the SDKs read 1.2e3 input tokens as 1200, and the provider bills 1200.
    body = b'{"model": "%s", "usage": {"%s": %s}}' % (model.encode(), key.encode(), written)
    usage = usage_from_json(service_type, body)
    assert (usage.input_tokens, type(usage.input_tokens)) == (1200, int)
    assert PriceBook().compute(service_type, model, usage).input == 1200 * Decimal(price) / 1_000_000


# --- Request bodies --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"model": "claude-sonnet-4-5", "stream": true, "messages": []}', ("claude-sonnet-4-5", True)),
        (b'{"model": "gpt-4o", "stream": false}', ("gpt-4o", False)),
        (b'{"model": "gpt-4o"}', ("gpt-4o", False)),
        (b'{"stream": "true"}', (None, False)),
        (b'{"model": 42, "stream": 1}', (None, False)),
        (b"", (None, False)),
        (b"model=gpt-4o&stream=true", (None, False)),
        (b"[1]", (None, False)),
        (b"\xff\xfe", (None, False)),
    ],
)
def test_request_model_and_stream(body, expected):
    assert request_model_and_stream(body) == expected


def test_request_fields_deep_inside_the_body_are_not_mistaken_for_the_top_level_ones():
    tool_use = {"type": "tool_use", "id": "t1", "name": "call", "input": {"model": "decoy", "stream": True}}
    body = json.dumps({"messages": [{"role": "assistant", "content": [tool_use]}], "model": "claude-haiku-4-5"})
    assert request_model_and_stream(body.encode()) == ("claude-haiku-4-5", False)


@pytest.mark.parametrize(
    ("service_type", "model", "key"),
    [("openai", "gpt-4o-mini", "prompt_tokens"), ("anthropic", "claude-haiku-4-5", "input_tokens")],
)
@pytest.mark.parametrize("bad_count", [True, -5_000, 3.5, "12"])
def test_a_count_that_is_there_but_no_count_leaves_the_cost_unknown(service_type, model, key, bad_count):
    output_key = "completion_tokens" if service_type == "openai" else "output_tokens"
    body = json.dumps({"model": model, "usage": {key: bad_count, output_key: 10}}).encode()
    cost = PriceBook().compute(service_type, model, usage_from_json(service_type, body))
    assert (cost.priced, cost.total) == (False, None)  # never the output alone, as if input were free
    # A null input count is no count either: the prompt was billed, its size is unknown.
    missing = json.dumps({"model": model, "usage": {key: None, output_key: 10}}).encode()
    assert not PriceBook().compute(service_type, model, usage_from_json(service_type, missing)).priced


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 1_000, "completion_tokens": 10, "prompt_tokens_details": {"cached_tokens": 2_000}},
        {"input_tokens": 1_000, "output_tokens": 10, "input_tokens_details": {"cached_tokens": 1_001}},
    ],
    ids=["chat", "responses"],
)
def test_cached_tokens_beyond_the_input_they_are_part_of_leave_the_cost_unknown(usage):
    body = json.dumps({"model": "gpt-4o-mini", "usage": usage}).encode()
    cost = PriceBook().compute("openai", "gpt-4o-mini", usage_from_json("openai", body))
    assert (cost.priced, cost.total) == (False, None)  # before: priced as all cached, none billed at the input rate


def test_json_the_fast_decoder_refuses_is_read_as_it_always_was():
    from ccproxy_core.json_text import decode_json

    assert decode_json(b'{"model": "m\\ud800x"}') == {"model": "m\ud800x"}  # a lone surrogate escape
    assert decode_json(b'{"n": NaN}')["n"] != decode_json(b'{"n": NaN}')["n"]  # NaN, as json reads it
    assert decode_json(b"[" * 5_000 + b"]" * 5_000) is None  # too deep to tell, never an exception
    assert decode_json(b'{"a": "\xff"}') is None and decode_json(b"{") is None
    assert decode_json(bytearray(b'{"model": "m", "stream": true}')) == {"model": "m", "stream": True}


@pytest.mark.parametrize(
    "iterations",
    [
        [{"type": "compaction", "input_tokens": -1, "output_tokens": 10}],  # a negative count
        [{"type": "compaction", "input_tokens": float("nan"), "output_tokens": 10}],  # NaN
        [{"type": "compaction", "input_tokens": 10**30, "output_tokens": 10}],  # huge: costs past any invoice
        [{"type": "compaction"}],  # a step without counts
        "compaction",  # not a list
    ],
)
def test_hostile_compaction_steps_leave_the_cost_unknown(iterations):
    usage_body = {"input_tokens": 100, "output_tokens": 10, "iterations": iterations}
    body = json.dumps({"model": "claude-sonnet-4-5", "usage": usage_body}).encode()
    cost = PriceBook().compute("anthropic", "claude-sonnet-4-5", usage_from_json("anthropic", body))
    assert (cost.priced, cost.total) == (False, None)


@pytest.mark.parametrize("geo", [1, None, "global", ""])
def test_an_answer_run_globally_or_naming_no_region_costs_the_standard_price(geo):
    body = json.dumps(
        {"model": "claude-opus-4-6", "usage": {"input_tokens": 1_000, "output_tokens": 100, "inference_geo": geo}}
    )
    cost = PriceBook().compute("anthropic", "claude-opus-4-6", usage_from_json("anthropic", body.encode()))
    assert cost.total == (1_000 * 5 + 100 * 25) / Decimal(1_000_000)  # the standard price


def test_hostile_output_items_of_a_response_bill_no_tool_calls():
    output = [None, "web_search_call", {"type": ["web_search_call"]}, {"type": "web_search_call\x00"}, {"type": 7}]
    output.append({"type": "web_search_call", "id": "ws_1"})
    response = {"object": "response", "id": "r" * 10_000, "status": "completed", "model": "gpt-5", "output": output}
    response["usage"] = {"input_tokens": 10, "output_tokens": 5}
    usage = usage_from_json("openai", json.dumps(response).encode(), "responses")
    assert (usage.web_search_requests, usage.file_search_requests) == (1, None)
    assert usage.response_id is None  # an id too long to be one is not remembered


@pytest.mark.parametrize(
    ("usage", "details_key"),
    [
        ({"prompt_tokens": 10_000, "completion_tokens": 1_000}, "prompt_tokens_details"),  # Chat Completions
        ({"input_tokens": 10_000, "output_tokens": 1_000}, "input_tokens_details"),  # Responses
    ],
)
def test_openai_cache_writes_are_their_own_tokens_at_their_own_price(usage, details_key):
    details = {"cached_tokens": 2_000, "cache_write_tokens": 6_000}
    details["cache_write_tokens_details"] = {"ttl_30m_tokens": 1_000, "ttl_12h_tokens": 5_000}
    body = json.dumps({"model": "gpt-5.6-cyber", "usage": {**usage, details_key: details}}).encode()
    read = usage_from_json("openai", body)
    assert (read.input_tokens, read.cache_read_tokens, read.cache_write_tokens) == (2_000, 2_000, 6_000)
    # OpenAI's published rates for gpt-5.6-cyber, per million: input 12.50, cached input 1.25, cache
    # writes 15.625, output 75: 2,000 x 12.5 + 2,000 x 1.25 + 6,000 x 15.625 + 1,000 x 75.
    cost = PriceBook().compute("openai", "gpt-5.6-cyber", read)
    assert cost.total == Decimal("0.19625") and cost.cache_write == Decimal("0.09375")


@pytest.mark.parametrize("bad_count", [-5, 10**30, "6000", 6000.5, {"n": 1}])
def test_a_hostile_openai_cache_write_count_leaves_the_cost_unknown(bad_count):
    details = {"cached_tokens": 0, "cache_write_tokens": bad_count}
    body = json.dumps(
        {"model": "gpt-5.6-cyber", "usage": {"input_tokens": 10, "output_tokens": 1, "input_tokens_details": details}}
    )
    read = usage_from_json("openai", body.encode())
    assert read.cache_write_tokens == 0 and read.input_tokens == 10  # nothing taken out of the input on its word
    assert not PriceBook().compute("openai", "gpt-5.6-cyber", read).priced


def test_an_anthropic_message_without_its_output_count_cannot_be_priced():
    # Every Messages answer reports its output tokens: without them, pricing the input alone is short of the bill.
    body = json.dumps(
        {"id": "msg_1", "type": "message", "model": "claude-haiku-4-5", "content": [], "usage": {"input_tokens": 1000}}
    ).encode()
    usage = usage_from_json("anthropic", body)
    assert usage.input_tokens == 1000 and usage.bad_counts
    assert not PriceBook().compute("anthropic", "claude-haiku-4-5", usage).priced
    counted = usage_from_json(
        "anthropic", body.replace(b'{"input_tokens": 1000}', b'{"input_tokens": 1000, "output_tokens": 0}')
    )
    assert not counted.bad_counts  # a count of 0 is a count


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (123, None),
        ({"why": "x"}, None),
        ("", None),
        ("end\x1b[2J\nturn", "end\\x1b[2J\\nturn"),  # control characters as visible escapes
        ("x" * 10_000, "x" * 31 + "\u2026"),  # a cut shown as one
    ],
)
def test_a_finish_reason_that_is_no_short_label_is_dropped_or_cut(reason, expected):
    for service_type, body in (
        (
            "anthropic",
            {"type": "message", "model": "m", "stop_reason": reason, "usage": {"input_tokens": 1, "output_tokens": 1}},
        ),
        ("openai", {"model": "m", "choices": [{"index": 0, "finish_reason": reason}], "usage": {"prompt_tokens": 1}}),
    ):
        assert usage_from_json(service_type, json.dumps(body).encode()).finish_reason == expected


@pytest.mark.parametrize(
    ("body", "reader"),
    [
        # Generated text always counts its output (OpenAI's API reference): without the count, the input
        # alone was priced as if it were the bill.
        ({"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 10}}, "usage"),
        (
            {"object": "chat.completion", "model": "gpt-4o", "usage": {"prompt_tokens": 10, "completion_tokens": None}},
            "usage",
        ),
        ({"object": "response", "model": "gpt-4o", "status": "completed", "usage": {"input_tokens": 10}}, "responses"),
    ],
)
def test_an_answer_of_generated_text_without_its_output_count_is_unpriced(body, reader):
    usage = usage_from_json("openai", json.dumps(body).encode(), reader)
    cost = PriceBook().compute("openai", "gpt-4o", usage)
    assert (usage.input_tokens, cost.priced, cost.total) == (10, False, None)


def test_embeddings_count_their_input_alone_and_are_priced():
    body = {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 8, "total_tokens": 8}}
    usage = usage_from_json("openai", json.dumps(body).encode())
    cost = PriceBook().compute("openai", "text-embedding-3-small", usage)
    assert cost.priced and cost.total == 8 * Decimal("0.02") / 1_000_000


@pytest.mark.parametrize("delta_usage", [{"output_tokens": None}, {}, None])
def test_an_anthropic_stream_whose_final_output_count_is_missing_is_unpriced(delta_usage):
    # message_start's output count is a placeholder (1); message_delta's is the bill.
    start = {
        "type": "message_start",
        "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 5, "output_tokens": 1}},
    }
    delta = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": delta_usage}
    events = [("message_start", start), ("message_delta", delta), ("message_stop", {"type": "message_stop"})]
    stream = b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)
    parser = StreamUsageParser("anthropic")
    parser.feed(stream)
    usage = parser.result()
    cost = PriceBook().compute("anthropic", "claude-haiku-4-5", usage)
    assert (cost.priced, cost.total) == (False, None)
    assert usage.output_tokens is None  # not the placeholder, counted nowhere as output


def test_an_anthropic_stream_without_message_delta_read_event_by_event_is_unpriced():
    # message_stop arrives in a read of its own, with no message_delta before it: the output count
    # was never told. Before, message_start's placeholder (1) was priced as the output.
    start = {
        "type": "message_start",
        "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 25, "output_tokens": 1}},
    }
    events = [("message_start", start), ("ping", {"type": "ping"}), ("message_stop", {"type": "message_stop"})]
    parser = StreamUsageParser("anthropic")
    for name, data in events:
        parser.feed(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
    usage = parser.result()
    assert (usage.input_tokens, usage.output_tokens) == (25, None)
    assert not PriceBook().compute("anthropic", "claude-haiku-4-5", usage).priced


def _anthropic_stream(*deltas: dict | None) -> bytes:
    start = {
        "type": "message_start",
        "message": {"model": "claude-haiku-4-5", "usage": {"input_tokens": 5, "output_tokens": 1}},
    }
    events = [("message_start", start)]
    events += [("message_delta", {"type": "message_delta", "delta": {}, "usage": usage}) for usage in deltas]
    events.append(("message_stop", {"type": "message_stop"}))
    return b"".join(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events)


def test_an_anthropic_stream_that_ends_without_any_message_delta_is_unpriced():
    parser = StreamUsageParser("anthropic")
    parser.feed(_anthropic_stream())
    usage = parser.result()
    assert usage.output_tokens is None
    assert PriceBook().compute("anthropic", "claude-haiku-4-5", usage).priced is False


def test_a_later_anthropic_message_delta_without_a_count_keeps_the_count_before_it():
    parser = StreamUsageParser("anthropic")
    parser.feed(_anthropic_stream({"output_tokens": 200}, {}))
    usage = parser.result()
    assert usage.output_tokens == 200  # counts are cumulative: none given is no change
    assert PriceBook().compute("anthropic", "claude-haiku-4-5", usage).total == (5 + 200 * 5) / Decimal(1_000_000)


@pytest.mark.parametrize(
    ("tools", "reasoning"),
    [
        ([{"type": ["web_search_preview"]}], {"effort": None}),
        ("web_search_preview", {"effort": None}),
        ([None, 7, {"type": "web_search"}], {"effort": None}),  # the GA tool: the list price
        ([{"type": "web_search_preview"}], None),  # no word on reasoning: the list price
        ([{"type": "web_search_preview"}], {"effort": ["none"]}),
    ],
)
def test_hostile_tool_echoes_keep_the_search_at_its_list_price(tools, reasoning):
    search = {"type": "web_search_call", "id": "ws_1", "action": {"type": "search"}}
    response = {"object": "response", "status": "completed", "model": "gpt-4o", "output": [search], "tools": tools}
    response |= {"reasoning": reasoning, "usage": {"input_tokens": 10, "output_tokens": 5}}
    usage = usage_from_json("openai", json.dumps(response).encode(), "responses")
    assert (usage.web_search_requests, usage.web_search_kcount) == (1, None)
