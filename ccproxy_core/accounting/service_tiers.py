"""Whether an answer's service tier has a price of its own, or no known price at all.

A provider bills most tiers at a price it publishes per token: its list price (OpenAI's
``default``, Anthropic's ``standard``), or a price list of the tier's own (OpenAI's ``flex`` and
``priority`` for the models that offer them, Anthropic's ``batch``). Other tiers draw on capacity
bought ahead (OpenAI's Scale Tier, Anthropic's Priority Tier commitments): the invoice shows the
commitment, not the request, so such an answer is priced only where a price list names its
tier, which an operator's price correction with ``when = { service_tier = "..." }`` can do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from genai_prices.types import ModelInfo

from ccproxy_core.accounting.price_corrections import PriceCorrection


def tier_has_known_price(
    list_price_tiers: frozenset[str],
    model_info: ModelInfo | None,
    corrections: Iterable[PriceCorrection],
    provider_id: str,
    model_ids: tuple[str, ...],
    context: Mapping[str, str],
    at: datetime,
) -> bool:
    """False when the context's ``service_tier`` is none the provider bills at a listed price and
    neither genai-prices (a price variant in force at ``at``) nor a correction prices it for the model."""
    tier = context.get("service_tier")
    if tier is None or tier in list_price_tiers:
        return True
    for variant in (model_info.price_variants if model_info is not None else None) or ():
        if variant.when.get("service_tier") == tier and (variant.constraint is None or variant.constraint.active(at)):
            return True
    return any(
        correction.when.get("service_tier") == tier and correction.applies(provider_id, model_ids, context)
        for correction in corrections
    )
