"""The rates of an answer's audio tokens, which bill at several times the text rates."""

from __future__ import annotations

from decimal import Decimal

from genai_prices.types import ModelPrice, TieredPrices

from ccproxy_core.accounting.usage import Usage


def audio_rates(prices: ModelPrice, usage: Usage) -> list[tuple[Decimal | TieredPrices | None, int]] | None:
    """The rate and count of each kind of audio token; ``None`` when a kind the answer has is not priced.

    Audio costs several times text, so billing it at the text rate would be a cost no invoice
    shows: a model without audio prices leaves such an answer unpriced.
    """
    kinds = (
        ("input_audio_mtok", usage.audio_input_tokens),
        ("cache_audio_read_mtok", usage.audio_cache_read_tokens),
        ("output_audio_mtok", usage.audio_output_tokens),
    )
    found = []
    for key, count in kinds:
        rate = getattr(prices, key, None) if count else None
        if count and rate is None:
            return None
        found.append((rate, count))
    return found
