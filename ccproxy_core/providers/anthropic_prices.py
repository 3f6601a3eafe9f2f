"""What selects an Anthropic answer's prices beyond its model: its tier, its speed and where it ran."""

from __future__ import annotations

from decimal import Decimal

from ccproxy_core.accounting.usage import Usage

US_ONLY_INFERENCE = Decimal("1.1")
"""US-only inference (``inference_geo: "us"``) costs 1.1 times every token price."""


def price_context(usage: Usage) -> dict[str, str]:
    """Batch answers use genai-prices' batch prices; ``speed`` selects fast-mode corrections; an
    ``inference_geo`` is named so that one no price list knows leaves the answer unpriced."""
    context: dict[str, str] = {}
    if usage.service_tier:
        context["service_tier"] = usage.service_tier
        if usage.service_tier == "batch":
            context["processing"] = "batch"
    if usage.speed:
        context["speed"] = usage.speed
    if usage.inference_geo:
        context["inference_geo"] = usage.inference_geo
    return context


def price_multiplier(usage: Usage) -> Decimal | None:
    """The factor on every token price of where the answer ran: 1.1 for US-only inference."""
    return US_ONLY_INFERENCE if usage.inference_geo == "us" else None
