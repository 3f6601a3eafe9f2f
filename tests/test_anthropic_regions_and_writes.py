"""What else sets an Anthropic answer's price: the region it ran in, and one-hour cache writes.

Prices per million tokens, from genai-prices: Claude Opus 4.6 $5 in and $25 out; Opus 4.8 cache
writes $6.25 (five minutes) and $10 (one hour).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.usage import usage_from_json


@pytest.mark.parametrize("geo", ["eu", "US", "us\x1b[31m", "u" * 10_000])
def test_a_region_no_price_list_gives_leaves_the_answer_unpriced(geo):
    # Anthropic documents "global" (the list price) and "us" (1.1 times); another region's premium is not
    # known. Before: priced at the list price, a cost the invoice may not show.
    body = json.dumps(
        {"model": "claude-opus-4-6", "usage": {"input_tokens": 1_000, "output_tokens": 100, "inference_geo": geo}}
    )
    cost = PriceBook().compute("anthropic", "claude-opus-4-6", usage_from_json("anthropic", body.encode()))
    assert (cost.priced, cost.total) == (False, None)


@pytest.mark.parametrize(
    "split",
    [{"ephemeral_1h_input_tokens": 3_000}, {"ephemeral_5m_input_tokens": 1_000, "ephemeral_1h_input_tokens": 0}],
)
def test_cache_writes_split_without_their_total_leave_the_cost_unknown(split):
    # Before: 3,000 one-hour writes shown in the record and billed at $0, as part of no writes.
    usage_body = {"input_tokens": 10, "output_tokens": 10, "cache_creation": split}
    body = json.dumps({"model": "claude-opus-4-8", "usage": usage_body}).encode()
    cost = PriceBook().compute("anthropic", "claude-opus-4-8", usage_from_json("anthropic", body))
    assert (cost.priced, cost.total) == (False, None)


def test_a_split_of_no_writes_without_its_total_is_no_writes():
    usage_body = {"input_tokens": 10, "output_tokens": 10, "cache_creation": {"ephemeral_5m_input_tokens": 0}}
    body = json.dumps({"model": "claude-opus-4-8", "usage": usage_body}).encode()
    cost = PriceBook().compute("anthropic", "claude-opus-4-8", usage_from_json("anthropic", body))
    assert cost.total == (10 * 5 + 10 * 25) / Decimal(1_000_000)
