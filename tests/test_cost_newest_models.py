"""The newest models of the price data, priced from their published rates worked out by hand.

GPT-6.2 Astra (released 2026-11-17): $8 input, $0.40 cached input, $40 output per MTok; ``ultrafast``
costs 3 times that through 2027-02-28 and 6 times from 2027-03-01; no flex rate is published.
GPT-6.2 Sol: $2 input, $0.10 cached input, $10 output per MTok.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import Usage

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
