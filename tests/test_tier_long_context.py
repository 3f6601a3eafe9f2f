"""A tier whose price list leaves out the list price's long-context rates prices no answer past the threshold.

OpenAI's priority processing prices for GPT-5.4 "exclude long context": above 272K input tokens the list
price doubles, and the priority price list says nothing of what it becomes. Such an answer's cost is
unknown, never the flat priority rate (half what the long-context rule would suggest).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import PriceBook
from ccproxy_core.accounting.price_corrections import load_corrections
from ccproxy_core.accounting.usage import Usage

MTOK = Decimal(1_000_000)


@pytest.mark.parametrize(("tokens", "priced"), [(272_000, True), (272_001, False)])
def test_gpt_5_4_at_priority_past_272k_input_is_unpriced(tokens, priced):
    cost = PriceBook().compute("openai", "gpt-5.4", Usage(tokens, 1000, service_tier="priority"))
    # Before: 272,001 tokens priced at the flat priority rates ($5 / $30), as if no threshold applied.
    assert cost.priced is priced
    at_list = PriceBook().compute("openai", "gpt-5.4", Usage(tokens, 1000))
    assert at_list.priced  # the list price has its long-context rates


def test_a_corrected_tier_price_without_tiers_counts_up_to_the_threshold_only(tmp_path):
    (tmp_path / "prices.toml").write_text(
        '[[correction]]\nprovider = "openai"\nmodel = "gpt-5.4"\nwhen = { service_tier = "flex" }\n'
        'input_mtok = "1.25"\noutput_mtok = "7.5"\n'
    )
    book = PriceBook(corrections=load_corrections(str(tmp_path / "prices.toml")))
    inside = book.compute("openai", "gpt-5.4", Usage(200_000, 100, cache_read_tokens=72_000, service_tier="flex"))
    assert inside.total is not None and inside.input == 200_000 * Decimal("1.25") / MTOK
    past = book.compute("openai", "gpt-5.4", Usage(200_000, 100, cache_read_tokens=72_001, service_tier="flex"))
    assert not past.priced  # cache reads count toward the threshold, as the list price counts them


def test_an_answer_billed_step_by_step_is_not_judged_by_its_summed_input(tmp_path):
    (tmp_path / "prices.toml").write_text(
        '[[correction]]\nprovider = "anthropic"\nmodel = "claude-sonnet-4-5"\nwhen = { service_tier = "priority" }\n'
        'input_mtok = "3"\noutput_mtok = "15"\n'
    )
    book = PriceBook(corrections=load_corrections(str(tmp_path / "prices.toml")))
    step = Usage(150_000, 100, service_tier="priority")
    answer = Usage(300_000, 200, service_tier="priority", steps=(step, step))
    # Each step's own input (150K) is under the 200K threshold: priced, as the same steps at the standard tier.
    assert book.compute("anthropic", "claude-sonnet-4-5", answer).total == 2 * (150_000 * 3 + 100 * 15) / MTOK
