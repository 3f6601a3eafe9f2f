"""The cost of one answer's usage at one price list: each part at its own rate, as genai-prices prices it.

Each part is priced with genai-prices' own per-unit arithmetic (``calc_unit_price``: the tiered rate
that the input total selects, times the count), so the parts add up exactly to the total. Tokens of a
kind the price list prices per token at no rate at all (a model priced per character or per audio hour
that reports tokens) have no known cost: the answer is unpriced, not free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

from genai_prices.types import ModelPrice, TieredPrices, calc_unit_price

from ccproxy_core.accounting.audio_prices import audio_rates
from ccproxy_core.accounting.cost_parts import UNPRICED, Cost, sum_costs, tokens_scaled
from ccproxy_core.accounting.usage import Usage

_TOKENS_PER_PRICE_UNIT = 1_000_000
"""genai-prices' token prices are per million tokens (``*_mtok``)."""
_USES_PER_PRICE_UNIT = 1_000
"""Per-request and per-tool-use prices are per thousand (``requests_kcount``, ``web_searches_kcount``)."""
_SECONDS_PER_HOUR = 3_600
"""Audio-length prices are per hour (``audio_hours``, ``input_audio_hours``)."""


def price_usage(prices: ModelPrice, usage: Usage, tool_prices: Mapping[str, Decimal]) -> Cost:
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    cache_read_tokens = usage.cache_read_tokens or 0
    cache_write_tokens = usage.cache_write_tokens or 0
    cache_write_1h_tokens = min(usage.cache_write_1h_tokens or 0, cache_write_tokens)
    all_input_tokens = usage.tier_input_tokens
    if all_input_tokens is None:
        all_input_tokens = input_tokens + cache_read_tokens + cache_write_tokens

    def price(rate: Decimal | TieredPrices | None, count: int) -> Decimal:
        return calc_unit_price(rate, count, all_input_tokens, _TOKENS_PER_PRICE_UNIT)

    audio_input = audio_cache_read = audio_output = Decimal(0)
    if usage.audio_input_tokens or usage.audio_cache_read_tokens or usage.audio_output_tokens:
        audio = audio_rates(prices, usage)
        if audio is None:
            return UNPRICED
        audio_input, audio_cache_read, audio_output = (price(rate, count) for rate, count in audio)
        input_tokens -= usage.audio_input_tokens
        cache_read_tokens -= usage.audio_cache_read_tokens
        output_tokens -= usage.audio_output_tokens

    (
        (image_input, image_input_tokens),
        (image_cache_read, image_cache_read_tokens),
        (image_output, image_output_tokens),
    ) = (
        _at_own_rate(prices, key, count, price)
        for key, count in (
            ("input_image_mtok", usage.image_input_tokens),
            ("cache_image_read_mtok", usage.image_cache_read_tokens),
            ("output_image_mtok", usage.image_output_tokens),
        )
    )
    input_tokens -= image_input_tokens
    cache_read_tokens -= image_cache_read_tokens
    output_tokens -= image_output_tokens

    # A token kind without a price of its own is billed at its parent's price.
    input_billed_tokens = input_tokens
    cache_read = audio_cache_read + image_cache_read
    if _rate(prices, "cache_read_mtok") is None:
        input_billed_tokens += cache_read_tokens
    else:
        cache_read += price(prices.cache_read_mtok, cache_read_tokens)
    cache_write = Decimal(0)
    if _rate(prices, "cache_write_mtok") is None:
        input_billed_tokens += cache_write_tokens
    elif _rate(prices, "cache_write_1h_mtok") is None:
        cache_write = price(prices.cache_write_mtok, cache_write_tokens)
    else:
        cache_write = price(prices.cache_write_mtok, cache_write_tokens - cache_write_1h_tokens) + price(
            prices.cache_write_1h_mtok, cache_write_1h_tokens
        )
    if (input_billed_tokens and _rate(prices, "input_mtok") is None) or (
        output_tokens and _rate(prices, "output_mtok") is None
    ):
        return UNPRICED  # billed otherwise (tts-1 per character): these tokens have no price of their own
    output = price(_rate(prices, "output_mtok"), output_tokens) + audio_output + image_output
    input_part = price(_rate(prices, "input_mtok"), input_billed_tokens) + audio_input + image_input
    tools = Decimal(0)
    for uses, key, own in (
        (usage.web_search_requests, "web_searches_kcount", usage.web_search_kcount),  # the answer's own, if any
        (usage.file_search_requests, "storage_searches_kcount", None),
    ):
        if uses:
            rate = next((rate for rate in (own, _rate(prices, key), tool_prices.get(key)) if rate is not None), None)
            if rate is None:  # a charge on the invoice that no price list says
                return UNPRICED
            tools += calc_unit_price(rate, uses, all_input_tokens, _USES_PER_PRICE_UNIT)
    total = input_part + output + cache_read + cache_write + tools
    if _rate(prices, "requests_kcount") is not None:
        per_request = calc_unit_price(prices.requests_kcount, 1, all_input_tokens, _USES_PER_PRICE_UNIT)
        input_part += per_request
        total += per_request
    return Cost(total, input_part, output, cache_read, cache_write, priced=True, tools=tools)


def price_audio_length(prices: ModelPrice, seconds: Decimal) -> Cost:
    """An answer billed by the length of its input audio, at the model's price per hour of it."""
    rate = next((rate for rate in (_rate(prices, "input_audio_hours"), _rate(prices, "audio_hours")) if rate), None)
    if not isinstance(rate, Decimal):
        return UNPRICED  # priced by tokens, or tiered by some count the answer does not give
    amount = rate * seconds / _SECONDS_PER_HOUR
    return Cost(amount, amount, Decimal(0), Decimal(0), Decimal(0), priced=True, tools=Decimal(0))


def price_steps(
    prices: ModelPrice,
    usage: Usage,
    prices_of: Callable[[str], ModelPrice | None],
    tool_prices: Mapping[str, Decimal],
    factor_of: Callable[[str | None], Decimal | None] | None = None,
) -> Cost:
    """Each sampling step at the rates its own input selects, on the model it names (an advisor's) or
    the answer's; server tools once, for the whole answer. A step on a model without a price leaves
    the whole answer unpriced. ``factor_of`` gives a step's factor on its token prices by the model it
    names (``None`` for the answer's), as a regional host bills each model; ``None`` leaves it unpriced."""
    steps = []
    for step in usage.steps or ():
        step_prices = prices if step.response_model is None else prices_of(step.response_model)
        factor = factor_of(step.response_model) if factor_of is not None else Decimal(1)
        if step_prices is None or factor is None:
            return UNPRICED
        cost = price_usage(step_prices, step, tool_prices)
        steps.append(tokens_scaled(cost, factor) if factor != 1 and cost.priced else cost)
    tools = Usage(
        input_tokens=0, web_search_requests=usage.web_search_requests, file_search_requests=usage.file_search_requests
    )
    return sum_costs([*steps, price_usage(prices, tools, tool_prices)])


def _rate(prices: ModelPrice, key: str) -> Decimal | TieredPrices | None:
    return getattr(prices, key, None)


def _at_own_rate(
    prices: ModelPrice, key: str, count: int, price: Callable[[Decimal | TieredPrices | None, int], Decimal]
) -> tuple[Decimal, int]:
    """The cost of ``count`` tokens of a kind at its own rate ``key``, and how many that took from
    the parent kind; ``(0, 0)`` when the model has no such rate and bills them as the parent kind."""
    rate = _rate(prices, key) if count else None
    return (Decimal(0), 0) if rate is None else (price(rate, count), count)
