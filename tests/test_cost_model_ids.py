"""Which price a model id gets: genai-prices matches ids by prefix, and an id that only carries a
prefix's version number on is another model, unknown until a price list names it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import Usage

MTOK = Decimal(1_000_000)
USAGE = Usage(input_tokens=1_000, output_tokens=100)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("anthropic", "claude-opus-4-10"),  # before: priced as Opus 4.1, $15 / $75
        ("anthropic", "claude-opus-4-50"),  # before: priced as Opus 4.5
        ("anthropic", "claude-21"),  # before: priced as Claude 2
        ("openai", "o10"),
    ],
)
def test_an_id_that_carries_a_known_model_s_version_number_on_is_unpriced(provider, model):
    assert PriceBook().compute(provider, model, USAGE) == UNPRICED


@pytest.mark.parametrize(
    ("provider", "model", "input_price", "output_price"),
    [
        ("anthropic", "claude-opus-4-1", 15, 75),
        ("anthropic", "claude-opus-4-1-20250805", 15, 75),
        ("anthropic", "claude-sonnet-4-20250514", 3, 15),  # the prefix claude-sonnet-4-2025 and a date
        ("anthropic", "claude-haiku-4-5-20251001", 1, 5),
        ("anthropic", "claude-3-5-sonnet-20241022", 3, 15),
        ("openai", "ft:gpt-4-0613:acme::abc123", 30, 60),  # the prefix ft:gpt-4-0 and the rest of a date
        ("openai", "gpt-4o-2024-08-06", Decimal("2.5"), 10),
        ("openai", "o1", 15, 60),
    ],
)
def test_known_ids_and_their_dated_snapshots_keep_their_prices(provider, model, input_price, output_price):
    # Published per million tokens (input / output).
    assert PriceBook().compute(provider, model, USAGE).total == (1_000 * input_price + 100 * output_price) / MTOK


def test_a_flood_of_unknown_models_warns_a_bounded_number_of_times(caplog):
    from ccproxy_core.accounting.cost import MAX_UNPRICED_WARNINGS

    book = PriceBook()
    with caplog.at_level("DEBUG", logger="ccproxy_core.accounting.cost"):
        for index in range(MAX_UNPRICED_WARNINGS * 3):
            assert book.compute("openai", f"invented-model-{index}", Usage(input_tokens=5)) == UNPRICED
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == MAX_UNPRICED_WARNINGS
    assert "Further unknown models are logged at DEBUG" in warnings[-1].getMessage()
    assert len([r for r in caplog.records if r.levelname == "DEBUG"]) == MAX_UNPRICED_WARNINGS * 2
