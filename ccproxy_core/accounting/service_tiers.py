"""Whether an answer's service tier and speed have a price, or no known price at all.

A provider bills most tiers at a price it publishes per token: its list price (OpenAI's
``default``, Anthropic's ``standard``), or a price list of the tier's own (OpenAI's ``flex`` and
``priority`` for the models that offer them, Anthropic's ``batch``). Other tiers draw on capacity
bought ahead (OpenAI's Scale Tier, Anthropic's Priority Tier commitments): the invoice shows the
commitment, not the request, so such an answer is priced only where a price list names its
tier, which an operator's price correction with ``when = { service_tier = "..." }`` can do.

Anthropic's fast mode (``speed`` ``fast``) costs a multiple of the standard rates that differs by
model: an answer served fast is priced only where a price list names that speed for its model,
never at the standard rates.

A tier's price list may leave out the long-context rates of the list price (OpenAI's priority
processing "excludes long context" for GPT-5.4): an answer past the list price's threshold at such
a tier has no known price.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

from ccproxy_core.accounting.cost_parts import Cost, tokens_scaled
from ccproxy_core.accounting.price_corrections import PriceCorrection
from ccproxy_core.accounting.usage import Usage

LIST_PRICE_SPEEDS = frozenset({"standard"})
"""Speeds billed at the model's standard rates."""
PRICED_INFERENCE_GEOS = frozenset({"global", "us"})
"""Where Anthropic may say an answer ran (``inference_geo``) at a known price: the list price, or US-only
inference at its multiple. Another region's premium is not known: its answers are unpriced."""

BATCH_DISCOUNT = Decimal("0.5")
"""What both providers publish for batch processing: half the standard token prices."""


def unpriced_label(
    list_price_tiers: frozenset[str],
    model_info: ModelInfo | None,
    corrections: Iterable[PriceCorrection],
    provider_id: str,
    model_ids: tuple[str, ...],
    context: Mapping[str, str],
    at: datetime,
) -> str | None:
    """The label of the price context (``service_tier``, ``speed``, ``inference_geo``) whose value the provider bills at
    no listed price and that neither genai-prices (a price variant in force at ``at``) nor a correction
    prices for the model; ``None`` when both are priced."""
    variants = (model_info.price_variants if model_info is not None else None) or ()
    labels = (
        ("service_tier", list_price_tiers),
        ("speed", LIST_PRICE_SPEEDS),
        ("inference_geo", PRICED_INFERENCE_GEOS),
    )
    for label, listed in labels:
        value = context.get(label)
        if value is None or value in listed:
            continue
        if any(v.when.get(label) == value and (v.constraint is None or v.constraint.active(at)) for v in variants):
            continue
        if not any(
            correction.when.get(label) == value and correction.applies(provider_id, model_ids, context)
            for correction in corrections
        ):
            return label
    return None


def long_context_unlisted(tier_prices: ModelPrice, list_prices: ModelPrice | None, usage: Usage) -> bool:
    """Whether ``usage``'s input passes a long-context threshold of the list price that the tier's own
    prices have no rate for (the input total as the thresholds count it: cache reads and writes too)."""
    listed = list_prices.input_mtok if list_prices is not None else None
    if not isinstance(listed, TieredPrices) or isinstance(tier_prices.input_mtok, TieredPrices) or usage.steps:
        return False  # (an answer billed step by step: each step's own input meets the threshold, or not)
    total = (usage.input_tokens or 0) + (usage.cache_read_tokens or 0) + (usage.cache_write_tokens or 0)
    return (usage.tier_input_tokens or total) > min(tier.start for tier in listed.tiers)


def batch_priced(price: Callable[[Usage], Cost], usage: Usage) -> Cost:
    """The cost of an answer served at the ``batch`` tier, ``price`` pricing a usage: genai-prices' batch
    price where it has one, else half the standard token prices (server tools cost what they cost)."""
    batch = price(usage)
    standard = price(replace(usage, service_tier=None))
    if batch != standard or not standard.priced:
        return batch
    return tokens_scaled(standard, BATCH_DISCOUNT)
