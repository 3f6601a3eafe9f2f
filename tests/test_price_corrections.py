"""Price corrections: the built-in ones against the providers' published figures, and the operator's file.

Every expected figure is worked out here by hand (USD per million tokens).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.price_corrections import load_corrections
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.errors import SettingsError
from ccproxy_core.runtime.settings_loader import load_settings

M = Decimal(1_000_000)


def test_sonnet_4_above_200k_input_tokens_is_priced_at_the_long_context_rates():
    # Published: above 200K input tokens, $6 input / $22.50 output; cache reads 0.1x = $0.60,
    # 5-minute writes 1.25x = $7.50. Cache tokens count towards the 200K.
    usage = Usage(input_tokens=1_000, output_tokens=2_000, cache_read_tokens=180_000, cache_write_tokens=40_000)
    cost = PriceBook().compute("anthropic", "claude-sonnet-4-20250514", usage)
    assert cost.input == 1_000 * Decimal("6") / M  # $0.006
    assert cost.output == 2_000 * Decimal("22.50") / M  # $0.045
    assert cost.cache_read == 180_000 * Decimal("0.60") / M  # $0.108
    assert cost.cache_write == 40_000 * Decimal("7.50") / M  # $0.30
    assert cost.total == Decimal("0.459")


def test_sonnet_4_at_200k_input_tokens_keeps_the_base_rates():
    cost = PriceBook().compute("anthropic", "claude-sonnet-4-0", Usage(input_tokens=200_000, output_tokens=100))
    assert cost.total == 200_000 * Decimal(3) / M + 100 * Decimal(15) / M  # $0.6015


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-opus-4-7"])
def test_opus_4_6_and_4_7_fast_mode_is_six_times_the_standard_rates(model):
    # Published: fast mode $30 input / $150 output; 1-hour cache writes 2x input = $60.
    usage = Usage(
        input_tokens=2_000, output_tokens=1_000, cache_write_tokens=1_000, cache_write_1h_tokens=1_000, speed="fast"
    )
    cost = PriceBook().compute("anthropic", model, usage)
    assert cost.total == 2_000 * Decimal(30) / M + 1_000 * Decimal(150) / M + 1_000 * Decimal(60) / M  # $0.27
    standard = PriceBook().compute("anthropic", model, Usage(input_tokens=2_000, output_tokens=1_000))
    assert standard.total == 2_000 * Decimal(5) / M + 1_000 * Decimal(25) / M  # $0.035


def test_opus_4_6_fast_mode_keeps_its_rates_above_200k_input_tokens():
    # Published: fast mode is priced across the full context window, requests over 200K included.
    usage = Usage(input_tokens=250_000, output_tokens=100, cache_read_tokens=50_000, speed="fast")
    cost = PriceBook().compute("anthropic", "claude-opus-4-6", usage)
    assert cost.total == (250_000 * 30 + 100 * 150 + 50_000 * 3) / M  # $9.165


@pytest.mark.parametrize("model", ["claude-mythos-5", "claude-mythos-5-1-20261101"])
def test_web_searches_on_a_model_priced_by_a_correction_pay_the_published_search_price(model, caplog):
    # Published: web search $10 per 1,000 searches on every Claude model; Mythos $10 input, $50 output.
    usage = Usage(input_tokens=1_000, output_tokens=100, web_search_requests=4)
    with caplog.at_level("WARNING", logger="ccproxy_core.accounting.cost"):
        cost = PriceBook().compute("anthropic", model, usage)
    assert cost.tools == Decimal("0.04")
    assert cost.total == (1_000 * 10 + 100 * 50) / M + Decimal("0.04")  # $0.055
    assert caplog.records == []  # priced: no warning that it is not


@pytest.mark.parametrize(
    ("model", "cache_hit"),
    [("claude-mythos-5", "1"), ("claude-mythos-5-20261101", "1"), ("claude-mythos-5-1", "0.25")],
)
def test_mythos_models_genai_prices_lacks_are_priced_as_published(model, cache_hit):
    # Published: $10 input, $50 output, $12.50 5-minute and $20 1-hour cache writes per MTok; cache hits $1 (5.1: $0.25).
    usage = Usage(
        input_tokens=1_000,
        output_tokens=200,
        cache_read_tokens=10_000,
        cache_write_tokens=3_000,
        cache_write_1h_tokens=1_000,
    )
    cost = PriceBook().compute("anthropic", model, usage)
    expected = (1_000 * 10 + 200 * 50 + 10_000 * Decimal(cache_hit) + 2_000 * Decimal("12.5") + 1_000 * 20) / M
    assert cost.total == expected  # $0.075 for Mythos 5, $0.0675 for 5.1


@pytest.mark.parametrize(
    ("model", "input_rate", "output_rate"),
    [
        ("gpt-4o-search-preview", "2.5", "10"),
        ("gpt-4o-search-preview-2025-03-11", "2.5", "10"),
        ("gpt-4o-mini-search-preview", "0.15", "0.6"),
        ("gpt-4o-mini-search-preview-2025-03-11", "0.15", "0.6"),
    ],
)
def test_a_chat_search_model_pays_its_search_on_every_request(model, input_rate, output_rate):
    # Published: the models' token rates, plus the preview search on a model without reasoning, $25
    # per 1,000 calls; the search models search before every answer.
    cost = PriceBook().compute("openai", model, Usage(input_tokens=1_000, output_tokens=100, response_model=model))
    tokens = (1_000 * Decimal(input_rate) + 100 * Decimal(output_rate)) / M
    assert cost.total == tokens + Decimal("0.025")  # gpt-4o: $0.0285; mini: $0.02521


def test_a_correction_for_one_model_does_not_price_a_longer_name():
    cost = PriceBook().compute("anthropic", "claude-mythos-5-9", Usage(input_tokens=1_000, output_tokens=10))
    assert (cost.priced, cost.total) == (False, None)


def test_web_searches_cost_ten_dollars_per_thousand():
    usage = Usage(input_tokens=1_000, output_tokens=500, web_search_requests=3)
    cost = PriceBook().compute("anthropic", "claude-sonnet-4-5", usage)
    # $3 x 1K + $15 x 500 per million = $0.0105, plus 3 searches x $0.01 = $0.03
    assert (cost.tools, cost.total) == (Decimal("0.03"), Decimal("0.0405"))


def test_openai_tiers_price_as_the_answer_says():
    # gpt-5: standard $1.25 / $10, priority $2.50 / $20, flex $0.625 / $5 per million.
    book = PriceBook()
    tokens = {"input_tokens": 10_000, "output_tokens": 1_000, "cache_read_tokens": 0}
    assert book.compute("openai", "gpt-5", Usage(**tokens)).total == Decimal("0.0225")
    assert book.compute("openai", "gpt-5", Usage(**tokens, service_tier="priority")).total == Decimal("0.045")
    assert book.compute("openai", "gpt-5", Usage(**tokens, service_tier="flex")).total == Decimal("0.01125")


@pytest.mark.parametrize(
    ("model", "rates"),
    [
        # Fine-tuned models per million: input, cached input, output.
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", (Decimal("0.30"), Decimal("0.15"), Decimal("1.20"))),
        ("ft:gpt-4o-2024-08-06:acme:support:def456", (Decimal("3.75"), Decimal("1.875"), Decimal("15"))),
    ],
)
def test_cached_input_of_a_fine_tuned_model_is_billed_at_its_cached_rate(model, rates):
    usage = Usage(input_tokens=6_000, cache_read_tokens=4_000, output_tokens=2_000)
    input_rate, cached_rate, output_rate = rates
    expected = (6_000 * input_rate + 4_000 * cached_rate + 2_000 * output_rate) / M
    assert PriceBook().compute("openai", model, usage).total == expected


def test_the_operator_adds_and_overrides_prices(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(
        '[[correction]]\nprovider = "openai"\nmodel = "house-model-1"\ninput_mtok = "2"\noutput_mtok = "8"\n'
        'source = "our contract"\n\n'
        '[[correction]]\nprovider = "anthropic"\nmodel = "claude-haiku-4-5"\nwhen = { service_tier = "priority" }\n'
        'input_mtok = "1.5"\n'
    )
    book = PriceBook(corrections=load_corrections(str(path)))
    house = book.compute("openai", "house-model-1", Usage(input_tokens=1_000, output_tokens=1_000))
    assert house.priced and house.total == Decimal("0.010")  # $2 + $8 per million, 1K each
    priority = book.compute("anthropic", "claude-haiku-4-5", Usage(input_tokens=1_000_000, service_tier="priority"))
    assert priority.total == Decimal("1.5")
    standard = book.compute("anthropic", "claude-haiku-4-5", Usage(input_tokens=1_000_000))
    assert standard.total == Decimal(1)


def test_a_correction_of_a_known_model_leaves_its_other_snapshots_at_their_own_prices(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text('[[correction]]\nprovider = "openai"\nmodel = "gpt-4o"\ninput_mtok = "1"\noutput_mtok = "2"\n')
    book = PriceBook(corrections=load_corrections(str(path)))
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    assert book.compute("openai", "gpt-4o", usage).total == 3
    # gpt-4o-2024-05-13, priced by genai-prices apart from gpt-4o: $5 input, $15 output per million.
    assert book.compute("openai", "gpt-4o-2024-05-13", usage).total == 20


def test_the_operator_adds_a_fee_per_request(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_text(
        '[[correction]]\nprovider = "openai"\nmodel = "gpt-4o-mini-search-preview"\nrequests_kcount = "25"\n'
        'source = "a search on every request"\n'
    )
    book = PriceBook(corrections=load_corrections(str(path)))
    cost = book.compute("openai", "gpt-4o-mini-search-preview", Usage(input_tokens=1_000, output_tokens=1_000))
    # $0.15 input and $0.60 output per million tokens (genai-prices), and $25 per thousand requests.
    assert cost.priced and cost.total == Decimal("0.00015") + Decimal("0.0006") + Decimal("0.025")


@pytest.mark.parametrize(
    "content, complaint",
    [
        ("[[correction]]\nprovider = 'openai'\n", "needs provider and model"),
        ("[[correction]]\nprovider = 'openai'\nmodel = 'm'\n", "gives no price"),
        ("[[correction]]\nprovider = 'openai'\nmodel = 'm'\ninput_mtok = 'lots'\n", "is not a price"),
        # Before: accepted, and every answer of the model unpriced without a word (its costs are refused).
        ("[[correction]]\nprovider = 'openai'\nmodel = 'm'\ninput_mtok = '1e30'\n", "is more than any price"),
        ("[[correction]]\nprovider = 'openai'\nmodel = 'm'\ninput_mtok = 1000000\n", "is more than any price"),
        (
            "[[correction]]\nprovider = 'openai'\nmodel = 'm'\ninput_mtok = '1'\nouput_mtok = '2'\n",
            "unknown key 'ouput_mtok'",
        ),
        ("this is = not toml =", "not valid TOML"),
        # Before: accepted, a file that corrected nothing.
        ("[[corrections]]\nprovider = 'openai'\nmodel = 'm'\ninput_mtok = '1'\n", "unknown table 'corrections'"),
        # Before: accepted, and the correction never applied (every answer priced at the list price).
        (
            "[[correction]]\nprovider = 'opnai'\nmodel = 'm'\ninput_mtok = '1'\n",
            "provider 'opnai' prices no answer; use 'openai'",
        ),
        (
            "[[correction]]\nprovider = 'openai'\nmodel = 'm'\nwhen = { service_teir = 'flex' }\ninput_mtok = '1'\n",
            "when names 'service_teir', which no answer has; use 'service_tier'",
        ),
        (
            "[[correction]]\nprovider = 'openai'\nmodel = 'm'\nwhen = { region = 'eu' }\ninput_mtok = '1'\n",
            "use one of inference_geo, processing, service_tier, speed",
        ),
    ],
)
def test_a_bad_corrections_file_stops_start_up_with_one_line(tmp_path, monkeypatch, content, complaint):
    path = tmp_path / "prices.toml"
    path.write_text(content)
    monkeypatch.setenv("UPSTREAM__PRICE_CORRECTIONS_FILE", str(path))
    with pytest.raises(SettingsError) as refused:
        load_settings()
    message = str(refused.value)
    assert message.startswith("invalid setting UPSTREAM__PRICE_CORRECTIONS_FILE=") and complaint in message
    assert "\n" not in message


def test_a_missing_corrections_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTREAM__PRICE_CORRECTIONS_FILE", str(tmp_path / "nowhere.toml"))
    with pytest.raises(SettingsError, match="cannot read UPSTREAM__PRICE_CORRECTIONS_FILE"):
        load_settings()


def test_a_list_price_correction_is_halved_for_batch_answers():
    # Sonnet 4's correction gives its list prices ($3 / $15); the Batch API bills half of them,
    # long-context rates included ($6 / $22.50 above 200K input tokens become $3 / $11.25).
    book = PriceBook()
    batch = book.compute("anthropic", "claude-sonnet-4-20250514", Usage(1_000, 100, service_tier="batch"))
    assert batch.total == (1_000 * Decimal(3) + 100 * Decimal(15)) / M / 2  # $0.00225
    long_batch = Usage(input_tokens=250_000, output_tokens=1_000, service_tier="batch")
    cost = book.compute("anthropic", "claude-sonnet-4-0", long_batch)
    assert cost.total == (250_000 * Decimal(3) + 1_000 * Decimal("11.25")) / M  # $0.76125
    standard = book.compute("anthropic", "claude-sonnet-4-0", Usage(1_000, 100))
    assert standard.total == (1_000 * Decimal(3) + 100 * Decimal(15)) / M  # $0.0045


def test_every_price_context_a_provider_gives_is_one_a_correction_may_name():
    from ccproxy_core.accounting.price_corrections import CONTEXT_KEYS, PROVIDER_IDS
    from ccproxy_core.providers import PROVIDERS

    assert sorted(provider.price_id for provider in PROVIDERS.values()) == sorted(PROVIDER_IDS)
    usage = Usage(1_000, 100, service_tier="batch", speed="fast", inference_geo="us")
    for provider in PROVIDERS.values():
        context = provider.price_context(usage)
        assert context and set(context) <= set(CONTEXT_KEYS), (provider.name, context)


def test_a_corrections_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "prices.toml"
    path.write_bytes(
        b"\xef\xbb\xbf[[correction]]\nprovider = 'openai'\nmodel = 'our-model'\ninput_mtok = '1'\noutput_mtok = '2'\n"
    )
    [correction] = [c for c in load_corrections(str(path)) if c.model == "our-model"]
    assert correction.prices == {"input_mtok": Decimal(1), "output_mtok": Decimal(2)}
