"""SVG images: the model that authors the SVG (``svg_usage``) is billed beside the image model.

The shapes are the openai SDK's ``ImagesResponse``: ``usage`` for the image model's rendering,
``svg_usage`` (``model``, ``input_tokens``, ``output_tokens``, ``reasoning_tokens``,
``total_tokens``) for the SVG's author. Prices per million tokens, from genai-prices:
gpt-image-2 $5 text in, $8 image in, $30 out; gpt-5.4 $2.50 in, $15 out (below 272K input).
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import usage_from_json

MTOK = Decimal(1_000_000)
IMAGE_USAGE = {
    "input_tokens": 50,
    "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
    "output_tokens": 4160,
    "total_tokens": 4210,
}
AUTHOR = {"model": "gpt-5.4", "input_tokens": 20_000, "output_tokens": 30_000, "reasoning_tokens": 20_000}
IMAGE_COST = (50 * 5 + 4160 * 30) / MTOK


def _svg_answer(svg_usage: object) -> bytes:
    body = {"created": 1, "data": [{"b64_json": "PHN2Zy8+"}], "output_format": "svg", "usage": IMAGE_USAGE}
    return json.dumps(body | {"svg_usage": svg_usage}).encode()


def test_the_svg_authors_tokens_are_billed_at_its_own_models_rates():
    usage = usage_from_json("openai", _svg_answer(AUTHOR | {"total_tokens": 50_000}))
    cost = PriceBook().compute("openai", "gpt-image-2", usage)
    author_cost = (20_000 * Decimal("2.5") + 30_000 * 15) / MTOK  # $0.50
    assert cost.total == IMAGE_COST + author_cost == Decimal("0.62505")  # before: $0.12505, the image alone
    assert cost.total == cost.input + cost.output
    assert (usage.input_tokens, usage.output_tokens, usage.reasoning_tokens) == (20_050, 34_160, 20_000)
    assert usage.image_output_tokens == 4160  # the author's output is text


def test_an_image_answer_without_svg_usage_is_the_image_models_alone():
    for svg_usage in (None, "absent"):
        body = _svg_answer(svg_usage) if svg_usage is None else _svg_answer(None).replace(b', "svg_usage": null', b"")
        usage = usage_from_json("openai", body)
        assert usage.steps is None
        assert PriceBook().compute("openai", "gpt-image-2", usage).total == IMAGE_COST


@pytest.mark.parametrize(
    "svg_usage",
    [
        AUTHOR | {"model": "no-such-model"},  # a model without a price: its part has no known cost
        AUTHOR | {"model": None},
        AUTHOR | {"input_tokens": -1},
        AUTHOR | {"output_tokens": "30000"},
        {k: v for k, v in AUTHOR.items() if k != "output_tokens"},
        "gpt-5.4",
        [AUTHOR],
        {},
    ],
)
def test_an_svg_author_whose_usage_cannot_be_read_leaves_the_cost_unknown(svg_usage):
    usage = usage_from_json("openai", _svg_answer(svg_usage))
    assert PriceBook().compute("openai", "gpt-image-2", usage) == UNPRICED


def test_an_svg_authors_reasoning_is_never_more_than_its_output():
    usage = usage_from_json("openai", _svg_answer(AUTHOR | {"reasoning_tokens": 10**9}))
    assert usage.reasoning_tokens == 30_000
    assert PriceBook().compute("openai", "gpt-image-2", usage).total == Decimal("0.62505")


def test_on_a_regional_host_each_part_is_billed_at_its_own_models_uplift():
    # gpt-image-1.5 (released before 5 March 2026) at its list price: 50 in at $5, 4,160 image tokens out at
    # $32; gpt-5.4 at 1.1 times its rates. Before: the author at the image model's factor, $0.05 short.
    regional = PriceBook(regional=frozenset({"openai"}))
    usage = usage_from_json("openai", _svg_answer(AUTHOR))
    image_cost = (50 * 5 + 4160 * 32) / MTOK
    author_cost = (20_000 * Decimal("2.5") + 30_000 * 15) / MTOK * Decimal("1.1")
    assert regional.compute("openai", "gpt-image-1.5", usage).total == image_cost + author_cost == Decimal("0.68337")
    assert PriceBook().compute("openai", "gpt-image-1.5", usage).total == image_cost + author_cost / Decimal("1.1")


def test_on_a_regional_host_an_author_of_unknown_release_leaves_the_answer_unpriced():
    usage = usage_from_json("openai", _svg_answer(AUTHOR | {"model": "gpt-image-2"}))
    assert PriceBook(regional=frozenset({"openai"})).compute("openai", "gpt-image-1.5", usage) == UNPRICED
    assert PriceBook().compute("openai", "gpt-image-1.5", usage).priced
