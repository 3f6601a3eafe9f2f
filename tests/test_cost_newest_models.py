"""The newest models of the price data, priced from their published rates worked out by hand.

GPT-6.2 Astra (released 2026-11-17): $8 input, $0.40 cached input, $40 output per MTok; ``ultrafast``
costs 3 times that through 2027-02-28 and 6 times from 2027-03-01; no flex rate is published.
GPT-6.2 Sol: $2 input, $0.10 cached input, $10 output per MTok.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import Usage, usage_from_json

# 10,000 uncached input, 2,000 cached input, 1,000 output tokens.
ASTRA = Decimal("0.08") + Decimal("0.0008") + Decimal("0.04")  # 10,000 x $8 + 2,000 x $0.40 + 1,000 x $40, per MTok
SOL = Decimal("0.02") + Decimal("0.0002") + Decimal("0.01")  # 10,000 x $2 + 2,000 x $0.10 + 1,000 x $10, per MTok


def usage(service_tier: str | None = None) -> Usage:
    return Usage(input_tokens=10_000, cache_read_tokens=2_000, output_tokens=1_000, service_tier=service_tier)


def at(monkeypatch: pytest.MonkeyPatch, day: str) -> None:
    clock = datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp()
    monkeypatch.setattr("ccproxy_core.accounting.cost.time.time", lambda: clock)


@pytest.mark.parametrize(
    ("model", "tier", "expected"),
    [
        ("gpt-6.2-astra", None, ASTRA),
        ("gpt-6.2-astra", "default", ASTRA),
        ("gpt-6.2-astra-2026-11-17", "default", ASTRA),
        ("gpt-6.2-astra", "fast", 2 * ASTRA),
        ("gpt-6.2-astra", "ultrafast", 3 * ASTRA),
        ("gpt-6.2-sol", "default", SOL),
        ("gpt-6.2-sol", "ultrafast", 3 * SOL),
    ],
)
def test_the_newest_openai_models_cost_their_published_rates(monkeypatch, model, tier, expected):
    at(monkeypatch, "2026-12-07")
    cost = PriceBook().compute("openai", model, usage(tier))
    assert cost.priced
    assert cost.total == expected


def test_ultrafast_costs_six_times_the_list_price_from_march_2027(monkeypatch):
    at(monkeypatch, "2027-03-01")
    assert PriceBook().compute("openai", "gpt-6.2-astra", usage("ultrafast")).total == 6 * ASTRA


def test_a_tier_without_a_published_rate_is_unpriced(monkeypatch):
    at(monkeypatch, "2026-12-07")
    assert PriceBook().compute("openai", "gpt-6.2-astra", usage("flex")) == UNPRICED


def twelve_hour_usage(model: str, service_tier: str = "default") -> Usage:
    """A Responses answer's usage as the openai SDK's ResponseUsage types it: 20,000 input tokens, of
    which 5,000 read from the cache and 10,000 written to it, 4,000 of those kept 12 hours."""
    answer = {
        "object": "response",
        "model": model,
        "service_tier": service_tier,
        "usage": {
            "input_tokens": 20_000,
            "input_tokens_details": {
                "cached_tokens": 5_000,
                "cache_write_tokens": 10_000,
                "cache_write_tokens_details": {"ttl_30m_tokens": 6_000, "ttl_12h_tokens": 4_000},
            },
            "output_tokens": 1_000,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 21_000,
        },
    }
    return usage_from_json("openai", json.dumps(answer).encode())


def test_twelve_hour_cache_writes_are_counted_apart():
    usage = twelve_hour_usage("gpt-6.2-sol")
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (5_000, 5_000, 10_000)
    assert usage.cache_write_1h_tokens == 4_000


# GPT-6.2 Sol: $2 input, $0.10 cached input, $2.50 30-minute writes, $4 12-hour writes (2x input), $10 output.
SOL_WITH_WRITES = (
    5_000 * Decimal(2) + 5_000 * Decimal("0.1") + 6_000 * Decimal("2.5") + 4_000 * Decimal(4) + 1_000 * Decimal(10)
) / 1_000_000  # $0.0515


@pytest.mark.parametrize(("tier", "multiple"), [("default", 1), ("fast", 2), ("ultrafast", 3)])
def test_twelve_hour_cache_writes_cost_their_published_multiple_of_the_input_rate(monkeypatch, tier, multiple):
    at(monkeypatch, "2026-12-07")
    cost = PriceBook().compute("openai", "gpt-6.2-sol", twelve_hour_usage("gpt-6.2-sol", tier))
    # Before: the 12-hour writes at the 30-minute rate, $0.0475.
    assert cost.priced and cost.total == multiple * SOL_WITH_WRITES


def test_a_model_with_one_published_cache_write_rate_bills_every_write_at_it(monkeypatch):
    at(monkeypatch, "2026-12-07")
    # GPT-6 Sol: $2 input, $0.20 cached input, $2.50 cache writes ("cache writes cost 1.25x"), $10 output.
    expected = (5_000 * 2 + 5_000 * Decimal("0.2") + 10_000 * Decimal("2.5") + 1_000 * 10) / Decimal(1_000_000)
    assert PriceBook().compute("openai", "gpt-6-sol", twelve_hour_usage("gpt-6-sol")).total == expected  # $0.046


@pytest.mark.parametrize(
    ("moment", "multiple"),
    [("2027-03-01T07:59:59+00:00", 3), ("2027-03-01T08:00:00+00:00", 6)],  # midnight in Pacific standard time
)
def test_openai_prices_change_on_its_own_calendar_us_pacific_time(monkeypatch, moment, multiple):
    clock = datetime.fromisoformat(moment).timestamp()
    monkeypatch.setattr("ccproxy_core.accounting.cost.time.time", lambda: clock)
    # Before: 6 times from 00:00 UTC, eight hours before OpenAI's date began.
    assert PriceBook().compute("openai", "gpt-6.2-astra", usage("ultrafast")).total == multiple * ASTRA
