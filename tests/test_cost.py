"""Costs checked against the providers' published prices, computed here by hand."""

from __future__ import annotations

import copy
import dataclasses
import logging
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from genai_prices import Usage as PriceUsage
from genai_prices import calc_price, data_snapshot
from genai_prices.types import ConditionalPrice, StartDateConstraint

from ccproxy_core.accounting.cost import UNPRICED, Cost, PriceBook, compute_cost
from ccproxy_core.accounting.price_corrections import load_corrections
from ccproxy_core.accounting.twelve_hour_writes import TWELVE_HOUR_WRITE_MULTIPLES
from ccproxy_core.accounting.usage import Usage, usage_from_json
from ccproxy_core.providers import PROVIDERS

MTOK = Decimal(1_000_000)

# USD per million tokens, from anthropic.com/pricing and openai.com/api/pricing:
# (input, output, cache read, 5-minute cache write, 1-hour cache write).
SONNET_4_5 = (Decimal("3"), Decimal("15"), Decimal("0.30"), Decimal("3.75"), Decimal("6"))
SONNET_4_5_OVER_200K = (Decimal("6"), Decimal("22.50"), Decimal("0.60"), Decimal("7.50"), Decimal("12"))
HAIKU_4_5 = (Decimal("1"), Decimal("5"), Decimal("0.10"), Decimal("1.25"), Decimal("2"))
OPUS_4_1 = (Decimal("15"), Decimal("75"), Decimal("1.50"), Decimal("18.75"), Decimal("30"))
# OpenAI: (input, output, cached input); no cache-write price.
GPT_4O = (Decimal("2.50"), Decimal("10"), Decimal("1.25"))
GPT_4O_MINI = (Decimal("0.15"), Decimal("0.60"), Decimal("0.075"))


def _by_hand(rates, *, input_tokens=0, output_tokens=0, cache_read=0, cache_write=0, cache_write_1h=0) -> Cost:
    input_rate, output_rate, read_rate = rates[:3]
    write_cost = Decimal(0)
    if len(rates) > 3:
        write_5m_rate, write_1h_rate = rates[3:]
        write_cost = ((cache_write - cache_write_1h) * write_5m_rate + cache_write_1h * write_1h_rate) / MTOK
    parts = (input_tokens * input_rate / MTOK, output_tokens * output_rate / MTOK, cache_read * read_rate / MTOK)
    return Cost(sum(parts) + write_cost, *parts, write_cost, priced=True, tools=Decimal(0))


def _tokens(input_tokens, output_tokens, cache_read, cache_write=0, cache_write_1h=0) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read": cache_read,
        "cache_write": cache_write,
        "cache_write_1h": cache_write_1h,
    }


@pytest.mark.parametrize(
    ("service_type", "model", "rates", "tokens"),
    [
        ("anthropic", "claude-sonnet-4-5", SONNET_4_5, _tokens(1200, 850, 30000, 4000)),
        ("anthropic", "claude-sonnet-4-5-20250929", SONNET_4_5, _tokens(7, 1, 0)),
        ("anthropic", "claude-haiku-4-5-20251001", HAIKU_4_5, _tokens(5000, 2000, 100000, 20000)),
        ("anthropic", "claude-opus-4-1", OPUS_4_1, _tokens(333, 4321, 12345, 678)),
        ("anthropic", "claude-haiku-4-5", HAIKU_4_5, _tokens(10, 20, 0, 3000, cache_write_1h=1000)),
        ("openai", "gpt-4o", GPT_4O, _tokens(6000, 500, 4000)),
        ("openai", "gpt-4o-mini-2024-07-18", GPT_4O_MINI, _tokens(123456, 7890, 1024)),
    ],
)
def test_cost_matches_published_prices(service_type, model, rates, tokens):
    usage = Usage(
        input_tokens=tokens["input_tokens"],
        output_tokens=tokens["output_tokens"],
        cache_read_tokens=tokens["cache_read"],
        cache_write_tokens=tokens["cache_write"],
        cache_write_1h_tokens=tokens["cache_write_1h"],
    )
    cost = PriceBook().compute(service_type, model, usage)
    assert cost == _by_hand(rates, **tokens)
    assert cost.input + cost.output + cost.cache_read + cost.cache_write == cost.total


def test_long_context_price_applies_to_every_part_above_200k_input_tokens():
    # 150K cache reads + 60K writes + 1K input = 211K input tokens: Sonnet's long-context tier.
    tokens = {"input_tokens": 1000, "output_tokens": 4000, "cache_read": 150_000, "cache_write": 60_000}
    usage = Usage(input_tokens=1000, output_tokens=4000, cache_read_tokens=150_000, cache_write_tokens=60_000)
    assert PriceBook().compute("anthropic", "claude-sonnet-4-5", usage) == _by_hand(SONNET_4_5_OVER_200K, **tokens)
    just_under = Usage(input_tokens=200_000, output_tokens=10)
    assert PriceBook().compute("anthropic", "claude-sonnet-4-5", just_under) == _by_hand(
        SONNET_4_5, input_tokens=200_000, output_tokens=10
    )


def test_openai_body_to_cost_end_to_end():
    body = (
        b'{"model": "gpt-4o-2024-08-06", "usage": {"prompt_tokens": 10000, "completion_tokens": 500,'
        b' "prompt_tokens_details": {"cached_tokens": 4000}}}'
    )
    usage = usage_from_json("openai", body)
    cost = compute_cost("openai", usage.response_model, usage)
    # 6000 uncached at $2.50, 4000 cached at $1.25, 500 out at $10 per million.
    assert cost.total == Decimal("0.015") + Decimal("0.005") + Decimal("0.005")
    assert (cost.input, cost.cache_read, cost.cache_write, cost.output) == (
        Decimal("0.015"),
        Decimal("0.005"),
        Decimal("0"),
        Decimal("0.005"),
    )


# gpt-5 per million tokens (input, output, cached input) at each processing tier, from
# openai.com/api/pricing and the priority-processing page; flex is half the standard price.
GPT_5_TIERS = {
    "default": (Decimal("1.25"), Decimal("10"), Decimal("0.125")),
    "priority": (Decimal("2.50"), Decimal("20"), Decimal("0.25")),
    "flex": (Decimal("0.625"), Decimal("5"), Decimal("0.0625")),
}


@pytest.mark.parametrize("tier", sorted(GPT_5_TIERS))
def test_a_responses_answer_is_priced_at_the_tier_that_served_it(tier):
    body = (
        b'{"object": "response", "model": "gpt-5-2025-08-07", "status": "completed", "service_tier": "%s",'
        b' "usage": {"input_tokens": 3000, "input_tokens_details": {"cached_tokens": 2048},'
        b' "output_tokens": 1200, "output_tokens_details": {"reasoning_tokens": 1000}}}'
    ) % tier.encode()
    usage = usage_from_json("openai", body, reader="responses")
    cost = compute_cost("openai", "gpt-5", usage)
    input_rate, output_rate, cached_rate = GPT_5_TIERS[tier]
    # 952 uncached and 2048 cached input tokens; 1200 output tokens, reasoning included once.
    assert usage.service_tier == tier
    assert cost.total == (952 * input_rate + 2048 * cached_rate + 1200 * output_rate) / MTOK


def test_an_answer_without_token_counts_has_no_known_cost_never_zero():
    cost = PriceBook().compute("anthropic", "claude-haiku-4-5", Usage(error_type="rate_limit_error"))
    assert cost == UNPRICED and cost.total is None and not cost.priced


def test_cache_tokens_of_a_model_without_cache_prices_are_billed_as_input():
    # gpt-4o has no cache-write price, so writes (never reported by OpenAI, but possible
    # in a Usage) are priced at the input rate, inside the input part.
    cost = PriceBook().compute("openai", "gpt-4o", Usage(input_tokens=1000, cache_write_tokens=1000))
    assert (cost.input, cost.cache_write, cost.total) == (Decimal("0.005"), Decimal(0), Decimal("0.005"))


def _all_models(provider_id: str):
    snapshot = data_snapshot.get_snapshot()
    return data_snapshot.find_provider_by_id(snapshot.providers, provider_id).models


@pytest.mark.parametrize("provider_id", ["anthropic", "openai"])
def test_parts_add_up_to_genai_prices_own_total_for_every_model(provider_id):
    book = PriceBook(corrections=())  # genai-prices alone; the corrections differ from it on purpose
    token_sets = [
        (1000, 300, 2000, 500, 0),
        (100_000, 5000, 150_000, 20_000, 5000),  # above 200K input tokens: long-context tiers
        (1, 2, 3, 4, 4),
        (300_000, 9, 0, 0, 0),
    ]
    compared = 0
    for model in _all_models(provider_id):
        for input_tokens, output_tokens, read, write, write_1h in token_sets:
            if write_1h and model.id in TWELVE_HOUR_WRITE_MULTIPLES:
                continue  # OpenAI's published 12-hour write rate, which genai-prices leaves out
            try:
                reference = calc_price(
                    PriceUsage(
                        input_tokens=input_tokens + read + write,  # genai-prices counts cache tokens in input
                        output_tokens=output_tokens,
                        cache_read_tokens=read,
                        cache_write_tokens=write,
                        cache_write_1h_tokens=write_1h or None,
                    ),
                    model.id,
                    provider_id=provider_id,
                )
            except (LookupError, ValueError):
                continue  # entries genai-prices itself cannot price by id (fine-tune templates)
            usage = Usage(input_tokens, output_tokens, read, write, cache_write_1h_tokens=write_1h)
            cost = book.compute(provider_id, model.id, usage)
            if None in (reference.model_price.input_mtok, reference.model_price.output_mtok):  # genai-prices: $0
                assert cost == UNPRICED, model.id
                continue
            assert cost.total == reference.total_price, model.id
            assert cost.output == reference.output_price, model.id
            assert cost.input + cost.cache_read + cost.cache_write == reference.input_price, model.id
            assert cost.input + cost.output + cost.cache_read + cost.cache_write == cost.total, model.id
            compared += 1
    assert compared > 50


def test_unknown_model_is_unpriced_and_warned_once(caplog):
    book = PriceBook()
    usage = Usage(input_tokens=10, output_tokens=10)
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        assert book.compute("anthropic", "claude-imaginary-9", usage) == UNPRICED
        assert book.compute("anthropic", "claude-imaginary-9", usage) == UNPRICED
        assert book.compute("openai", "gpt-imaginary", usage) == UNPRICED
    warnings = [r.getMessage() for r in caplog.records if r.name == "ccproxy_core.accounting.cost"]
    assert len(warnings) == 2
    assert "claude-imaginary-9" in warnings[0] and "gpt-imaginary" in warnings[1]
    assert UNPRICED.total is None and UNPRICED.input is None and not UNPRICED.priced


def test_the_model_that_served_the_answer_is_the_one_billed(caplog):
    book = PriceBook()
    usage = Usage(input_tokens=2000, output_tokens=1000)
    asked_gpt_4o = book.compute("openai", "gpt-4o", usage)
    assert asked_gpt_4o.total == (2000 * GPT_4O[0] + 1000 * GPT_4O[1]) / MTOK
    served_by_mini = book.compute("openai", "gpt-4o", usage, served="gpt-4o-mini-2024-07-18")
    assert served_by_mini.total == (2000 * GPT_4O_MINI[0] + 1000 * GPT_4O_MINI[1]) / MTOK
    assert book.compute("openai", None, usage, served="gpt-4o-mini") == served_by_mini
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        # A served name no price list knows is billed at a price no one can say: the requested
        # model's price would be a figure the invoice does not show.
        assert book.compute("openai", "gpt-4o", usage, served="gpt-4o-internal-build-7") == UNPRICED
        assert book.compute("anthropic", "claude-haiku-4-5", usage, served="claude-opus-9-20991231") == UNPRICED
    assert [record.args[0] for record in caplog.records] == ["gpt-4o-internal-build-7", "claude-opus-9-20991231"]


def test_unknown_provider_is_unpriced(caplog):
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        assert PriceBook().compute("no-such-provider", "gpt-4o", Usage(input_tokens=1)) == UNPRICED
    assert caplog.records == []  # no provider of that name: nothing to look a model up in


def test_missing_model_is_unpriced_without_a_warning(caplog):
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        assert PriceBook().compute("anthropic", None, Usage(input_tokens=1)) == UNPRICED
        assert PriceBook().compute("anthropic", "", Usage(input_tokens=1)) == UNPRICED
    assert caplog.records == []


def test_compute_cost_warns_once_per_unknown_model(caplog):
    model = f"unknown-{uuid.uuid4()}"
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        for _ in range(3):
            assert compute_cost("openai", model, Usage(input_tokens=5)) == UNPRICED
    assert [model in r.getMessage() for r in caplog.records] == [True]


def test_an_unknown_model_pushed_out_of_the_bounded_memory_is_warned_again(caplog):
    book = PriceBook(max_models=1)
    with caplog.at_level(logging.WARNING, logger="ccproxy_core.accounting.cost"):
        for model in ("unknown-a", "unknown-b", "unknown-a"):
            book.compute("openai", model, Usage(input_tokens=1))
    assert len(caplog.records) == 3


def test_a_new_price_snapshot_is_used_at_once():
    book = PriceBook()
    usage = Usage(input_tokens=1_000_000)
    assert book.compute("anthropic", "claude-haiku-4-5", usage).total == Decimal(1)
    providers = copy.deepcopy(data_snapshot.get_snapshot().providers)
    haiku = data_snapshot.find_provider_by_id(providers, "anthropic").find_model("claude-haiku-4-5")
    haiku.prices.input_mtok = Decimal(2)
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=providers, from_auto_update=True))
    try:
        assert book.compute("anthropic", "claude-haiku-4-5", usage).total == Decimal(2)
    finally:
        data_snapshot.set_custom_snapshot(None)
    assert book.compute("anthropic", "claude-haiku-4-5", usage).total == Decimal(1)


def test_a_price_change_applies_from_its_first_second_with_one_book(monkeypatch):
    """The prices in force are remembered within a second, never across one."""
    providers = copy.deepcopy(data_snapshot.get_snapshot().providers)
    haiku = data_snapshot.find_provider_by_id(providers, "anthropic").find_model("claude-haiku-4-5")
    doubled = copy.copy(haiku.prices)
    doubled.input_mtok = Decimal(2)
    haiku.prices = [
        ConditionalPrice(prices=haiku.prices),
        ConditionalPrice(constraint=StartDateConstraint(start_date=date(2031, 1, 1)), prices=doubled),
    ]
    data_snapshot.set_custom_snapshot(data_snapshot.DataSnapshot(providers=providers, from_auto_update=True))
    midnight = datetime(2031, 1, 1, tzinfo=UTC).timestamp()
    book = PriceBook()
    usage = Usage(input_tokens=1_000_000)
    try:
        for clock, price in [(midnight - 1.5, 1), (midnight - 0.001, 1), (midnight, 2), (midnight + 0.5, 2)]:
            monkeypatch.setattr("ccproxy_core.accounting.cost.time.time", lambda clock=clock: clock)
            assert book.compute("anthropic", "claude-haiku-4-5", usage).total == Decimal(price), clock - midnight
    finally:
        data_snapshot.set_custom_snapshot(None)


def test_invented_service_tiers_in_one_second_keep_a_bounded_memory_and_are_unpriced(monkeypatch):
    """A provider (or a fake one) can put any text in ``service_tier``; each is its own price context,
    and a tier no price list names has no known price."""
    monkeypatch.setattr("ccproxy_core.accounting.cost.time.time", lambda: 1_900_000_000.25)
    book = PriceBook(max_models=8)
    assert book.compute("openai", "gpt-4o-mini", Usage(input_tokens=1_000_000)).total == GPT_4O_MINI[0]
    tiers = [f"tier-{n}" for n in range(40)] + ["\x00\x1b[31m", "x" * 100_000, "NaN", "\u2028"]
    for tier in tiers:
        assert book.compute("openai", "gpt-4o-mini", Usage(input_tokens=1_000_000, service_tier=tier)) == UNPRICED
        assert len(book._resolved) <= 8


@pytest.mark.parametrize(
    ("service", "model", "tier"),
    [
        ("openai", "gpt-4o", "scale"),  # Scale Tier: units bought ahead, not billed per token
        ("openai", "gpt-5", "scale"),
        ("openai", "gpt-4o", "flex"),  # gpt-4o has no flex price list (OpenAI offers flex for o3, o4-mini, gpt-5)
        ("anthropic", "claude-sonnet-4-5", "priority"),  # Priority Tier: capacity committed ahead
    ],
)
def test_an_answer_served_at_a_tier_without_a_known_price_is_unpriced_not_billed_at_list_price(service, model, tier):
    book = PriceBook()
    assert book.compute(service, model, Usage(input_tokens=1000, output_tokens=100)).priced
    assert book.compute(service, model, Usage(input_tokens=1000, output_tokens=100, service_tier=tier)) == UNPRICED


def test_a_tier_without_a_known_price_is_warned_about_once_per_provider_and_tier(caplog):
    book = PriceBook()
    with caplog.at_level("WARNING", logger="ccproxy_core.accounting.cost"):
        for model in ("claude-sonnet-4-5", "claude-haiku-4-5", "claude-sonnet-4-5"):
            book.compute("anthropic", model, Usage(1000, 100, service_tier="priority"))
        book.compute("openai", "gpt-5", Usage(1000, 100, service_tier="scale"))
    warned = [record.getMessage() for record in caplog.records if "service tier" in record.getMessage()]
    assert len(warned) == 2
    assert "'anthropic' served at service tier 'priority'" in warned[0] and "budgets do not count them" in warned[0]
    assert "when = { service_tier = 'scale' }" in warned[1]


@pytest.mark.parametrize(
    ("service", "model", "tier"),
    [
        ("openai", "gpt-4o", "default"),
        ("openai", "gpt-4o", "auto"),
        ("anthropic", "claude-sonnet-4-5", "standard"),
        ("anthropic", "claude-sonnet-4-5", "batch"),
    ],
)
def test_the_list_price_tiers_keep_their_prices(service, model, tier):
    book = PriceBook()
    listed = book.compute(service, model, Usage(input_tokens=1000, output_tokens=100))
    served = book.compute(service, model, Usage(input_tokens=1000, output_tokens=100, service_tier=tier))
    assert served.total == (listed.total / 2 if tier == "batch" else listed.total)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "claude-sonnet-5-5", "claude-haiku-4-5"])
def test_an_answer_served_fast_by_a_model_without_a_fast_price_is_unpriced_not_billed_at_standard_rates(model, caplog):
    book = PriceBook()
    assert book.compute("anthropic", model, Usage(1000, 100, speed="standard")).priced
    with caplog.at_level("WARNING", logger="ccproxy_core.accounting.cost"):
        assert book.compute("anthropic", model, Usage(1000, 100, speed="fast")) == UNPRICED
        assert book.compute("anthropic", model, Usage(1000, 100, speed="fast")) == UNPRICED
    assert len(caplog.records) == 1
    assert "served at speed 'fast'" in caplog.records[0].getMessage()
    assert "when = { speed = 'fast' }" in caplog.records[0].getMessage()


def test_an_unknown_model_served_fast_is_named_too(caplog):
    book = PriceBook()
    book.compute("anthropic", "claude-sonnet-4-5", Usage(1000, 100, speed="fast"))  # the speed, warned once
    with caplog.at_level("WARNING", logger="ccproxy_core.accounting.cost"):
        assert book.compute("anthropic", "my-invented-model", Usage(1000, 100, speed="fast")) == UNPRICED
    named = [record.getMessage() for record in caplog.records if "No price known for model" in record.getMessage()]
    assert len(named) == 1 and "'my-invented-model'" in named[0]


def test_a_model_with_a_fast_price_variant_is_priced_fast():
    # genai-prices' own fast variant of Opus 4.8: twice the standard $5 / $25.
    cost = PriceBook().compute("anthropic", "claude-opus-4-8", Usage(1000, 100, speed="fast"))
    assert cost.total == (1000 * 10 + 100 * 50) / MTOK


def test_server_tools_without_a_price_in_the_models_list_take_the_providers_published_price():
    # claude-3-haiku's price list has no web search price; Anthropic's is $10 per 1,000 on every model.
    usage = Usage(input_tokens=1000, output_tokens=100, web_search_requests=3)
    tokens = PriceBook().compute("anthropic", "claude-3-haiku", Usage(input_tokens=1000, output_tokens=100))
    cost = PriceBook().compute("anthropic", "claude-3-haiku", usage)
    assert cost.tools == Decimal("0.03") and cost.total == tokens.total + Decimal("0.03")
    # A provider that publishes no such price: the searches are a charge no price says, so no cost at all.
    silent = dataclasses.replace(PROVIDERS["anthropic"], tool_use_prices={})
    assert PriceBook().compute(silent, "claude-3-haiku", usage) == UNPRICED
    files = Usage(input_tokens=1000, output_tokens=100, file_search_requests=4)
    assert PriceBook().compute("openai", "gpt-4.1-nano", files).tools == Decimal("0.01")  # $2.50 per 1,000


def test_an_operator_prices_a_committed_tier_with_a_correction(tmp_path):
    # Priority Tier at the price of the operator's contract: $2.40 / $12 per million tokens.
    (tmp_path / "prices.toml").write_text(
        '[[correction]]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\n'
        'when = { service_tier = "priority" }\ninput_mtok = "2.4"\noutput_mtok = "12"\n'
    )
    book = PriceBook(corrections=load_corrections(str(tmp_path / "prices.toml")))
    cost = book.compute("anthropic", "claude-sonnet-4-5", Usage(1000, 100, service_tier="priority"))
    assert cost.total == (1000 * Decimal("2.4") + 100 * 12) / MTOK
