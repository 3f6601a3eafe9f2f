"""OpenAI's 12-hour prompt-cache retention: writes kept 12 hours cost more than 30-minute ones.

A Responses answer counts them in ``input_tokens_details.cache_write_tokens_details.ttl_12h_tokens``;
the record keeps them where Anthropic's one-hour writes go (``cache_write_1h_tokens``), and they are
priced at ``cache_write_1h_mtok``. genai-prices gives only the 30-minute rate; OpenAI publishes the
12-hour one as a multiple of the input rate for the models below, so it is that multiple of the input
rate in force (the tier's, and past the long-context threshold the higher one). Other models publish
one cache-write rate (1.25 times input), which every write of theirs costs.
"""

from __future__ import annotations

from decimal import Decimal

from genai_prices.types import ModelPrice, Tier, TieredPrices

TWELVE_HOUR_WRITE_MULTIPLES = {
    "gpt-6.2-astra": Decimal(2),  # "the 12-hour rate (2x input)": $16 per MTok against $8 input
    "gpt-6.2-sol": Decimal(2),  # $4 against $2
    "gpt-6.1-terra": Decimal("2.5"),  # "the 12-hour retention rate ($2.50)" against $1 input
}


def with_twelve_hour_writes(prices: ModelPrice, model_id: str | None) -> ModelPrice:
    """``prices`` with the 12-hour write rate of ``model_id`` (genai-prices' id) when it has none of its own."""
    multiple = TWELVE_HOUR_WRITE_MULTIPLES.get(model_id or "")
    rate = prices.input_mtok
    if multiple is None or rate is None or getattr(prices, "cache_write_1h_mtok", None) is not None:
        return prices
    if isinstance(rate, TieredPrices):
        tiers = [Tier(start=tier.start, price=tier.price * multiple) for tier in rate.tiers]
        long_rate: Decimal | TieredPrices = TieredPrices(base=rate.base * multiple, tiers=tiers)
    else:
        long_rate = rate * multiple
    fields = {key: value for key, value in prices.__dict__.items() if not key.startswith("_")}
    return ModelPrice(**{**fields, "cache_write_1h_mtok": long_rate})
