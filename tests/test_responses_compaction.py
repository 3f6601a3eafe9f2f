"""``POST /v1/responses/compact``: a compaction is priced at the tier its answer says served it.

The openai SDK's ``CompactedResponse``: ``object: "response.compaction"``, ``usage``, and
``service_tier``, "the service tier used for compaction, when reported"; it has no ``status``.
Prices per million tokens for gpt-5, from genai-prices: $1.25 in, $0.125 cached, $10 out;
flex half of each, priority twice.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import usage_from_json

USAGE = {
    "input_tokens": 100_000,
    "input_tokens_details": {"cached_tokens": 20_000},
    "output_tokens": 4_000,
    "output_tokens_details": {"reasoning_tokens": 3_000},
    "total_tokens": 104_000,
}
DEFAULT = (80_000 * Decimal("1.25") + 20_000 * Decimal("0.125") + 4_000 * 10) / 1_000_000  # $0.1425


def _compaction(model: str, tier: str | None) -> bytes:
    body = {"id": "cmp_1", "object": "response.compaction", "created_at": 1, "model": model, "output": []}
    return json.dumps(body | {"usage": USAGE, "service_tier": tier}).encode()


@pytest.mark.parametrize(("tier", "factor"), [("default", 1), ("flex", Decimal("0.5")), ("priority", 2), (None, 1)])
def test_a_compaction_is_priced_at_the_tier_that_served_it(tier, factor):
    usage = usage_from_json("openai", _compaction("gpt-5", tier), "responses")
    assert usage.service_tier == tier  # before: always None, so always the default price
    assert PriceBook().compute("openai", "gpt-5", usage).total == DEFAULT * factor


@pytest.mark.parametrize(("model", "tier"), [("gpt-5", "scale"), ("gpt-4o", "flex")])
def test_a_compaction_at_a_tier_without_a_price_is_unpriced(model, tier):
    usage = usage_from_json("openai", _compaction(model, tier), "responses")
    assert not PriceBook().compute("openai", model, usage).priced  # before: priced at the default rates


@pytest.mark.parametrize(("tier", "factor"), [("flex", Decimal("0.5")), ("priority", 2)])
def test_a_whole_response_object_without_a_status_is_priced_at_the_tier_it_names(tier, factor):
    body = {"id": "resp_1", "object": "response", "model": "gpt-5", "usage": USAGE, "service_tier": tier}
    usage = usage_from_json("openai", json.dumps(body).encode(), "responses")
    assert PriceBook().compute("openai", "gpt-5", usage).total == DEFAULT * factor  # before: the default price


def test_a_stream_cut_after_a_created_event_without_a_status_records_no_tier():
    from ccproxy_core.accounting.usage import StreamUsageParser

    created = {
        "type": "response.created",
        "response": {"id": "resp_1", "object": "response", "service_tier": "priority"},
    }
    parser = StreamUsageParser("openai", "responses")
    parser.feed(b"event: response.created\ndata: " + json.dumps(created).encode() + b"\n\n")
    assert parser.result().service_tier is None  # the request's echo, nothing served at it yet
    done = {"type": "response.completed", "response": {"id": "resp_1", "object": "response", "service_tier": "flex"}}
    parser.feed(b"event: response.completed\ndata: " + json.dumps(done).encode() + b"\n\n")
    assert parser.result().service_tier == "flex"
