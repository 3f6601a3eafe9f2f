"""Audio and image tokens, billed at the model's own audio and image rates, checked by hand.

Usage shapes are OpenAI's: ``audio_tokens`` in the input and output details (Realtime and the
audio models), ``image_tokens`` in ``input_tokens_details`` and ``output_tokens_details`` (the
images API, whose ``output_tokens`` are "the number of image tokens in the output image").
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import Usage, usage_from_json
from ccproxy_core.providers import openai as openai_provider

MTOK = Decimal(1_000_000)


def test_realtime_audio_tokens_are_billed_at_the_audio_rates():
    event = {
        "input_tokens": 1000,
        "output_tokens": 500,
        "input_token_details": {
            "cached_tokens": 200,
            "text_tokens": 200,
            "audio_tokens": 800,
            "cached_tokens_details": {"text_tokens": 100, "audio_tokens": 100},
        },
        "output_token_details": {"text_tokens": 100, "audio_tokens": 400},
    }
    usage = usage_from_json("openai", json.dumps({"object": "realtime.response", "usage": event}).encode(), "responses")
    cost = PriceBook().compute("openai", "gpt-realtime", usage)
    # gpt-realtime per million: text $4 in, $16 out; audio $32 in, $64 out; cached input $0.40 (text and audio).
    assert cost.input == (100 * 4 + 700 * 32) / MTOK
    assert cost.cache_read == (100 * Decimal("0.40") + 100 * Decimal("0.40")) / MTOK
    assert cost.output == (100 * 16 + 400 * 64) / MTOK
    assert cost.total == cost.input + cost.cache_read + cost.output


@pytest.mark.parametrize(
    ("model", "text_in", "text_cached", "image_in", "image_cached", "output"),
    [
        ("gpt-realtime-mini", Decimal("0.60"), Decimal("0.06"), Decimal("0.80"), Decimal("0.08"), Decimal("2.40")),
        ("gpt-realtime", 4, Decimal("0.40"), 5, Decimal("0.50"), 16),
    ],
)
def test_realtime_cached_image_tokens_are_billed_at_the_cached_image_rate(
    model, text_in, text_cached, image_in, image_cached, output
):
    # The SDK's RealtimeResponseUsageInputTokenDetails: cached tokens are a subset of the input, and
    # ``cached_tokens_details`` splits them by kind as ``image_tokens`` and ``text_tokens`` split the input.
    event = {
        "input_tokens": 3000,
        "output_tokens": 100,
        "input_token_details": {
            "text_tokens": 1000,
            "image_tokens": 2000,
            "cached_tokens": 2500,
            "cached_tokens_details": {"text_tokens": 500, "image_tokens": 2000},
        },
        "output_token_details": {"text_tokens": 100},
    }
    usage = usage_from_json("openai", json.dumps({"object": "realtime.response", "usage": event}).encode(), "responses")
    cost = PriceBook().compute("openai", model, usage)
    assert cost.input == 500 * text_in / MTOK  # the uncached text: every uncached image token was cached
    assert cost.cache_read == (500 * text_cached + 2000 * image_cached) / MTOK
    assert cost.total == cost.input + cost.cache_read + 100 * output / MTOK  # $0.00073 on gpt-realtime-mini


def test_audio_tokens_are_unpriced_where_the_model_has_no_audio_prices_and_at_them_where_it_has():
    body = (
        b'{"model": "gpt-4o-audio-preview-2024-12-17", "usage": {"prompt_tokens": 1000, "completion_tokens": 500,'
        b' "prompt_tokens_details": {"audio_tokens": 800}, "completion_tokens_details": {"audio_tokens": 400}}}'
    )
    usage = usage_from_json("openai", body)
    assert (usage.audio_input_tokens, usage.audio_output_tokens) == (800, 400)
    assert PriceBook().compute("openai", "gpt-4o", usage) == UNPRICED  # not text prices for audio
    text_only = usage_from_json("openai", body.replace(b"800", b"0").replace(b"400", b"0"))
    assert PriceBook().compute("openai", "gpt-4o", text_only).total == (1000 * Decimal("2.5") + 500 * 10) / MTOK
    # gpt-4o-audio-preview per million: text $2.50 in, $10 out; audio $40 in, $80 out (a price correction).
    assert (
        PriceBook().compute("openai", "gpt-4o-audio-preview-2024-12-17", usage).total
        == (200 * Decimal("2.5") + 800 * 40 + 100 * 10 + 400 * 80) / MTOK
    )


@pytest.mark.parametrize(
    ("model", "text_in", "text_out", "audio_in", "audio_out"),
    [
        ("gpt-4o-audio-preview-2024-10-01", Decimal("2.5"), 10, 100, 200),
        ("gpt-4o-realtime-preview-2024-10-01", 5, 20, 100, 200),
        ("gpt-4o-realtime-preview-2024-12-17", 5, 20, 40, 80),
    ],
)
def test_the_first_audio_snapshots_are_billed_at_the_audio_prices_of_their_day(
    model, text_in, text_out, audio_in, audio_out
):
    # Published per million tokens; October 2024's audio cost 2.5 times December's (before: December's).
    usage = Usage(input_tokens=1_000, output_tokens=500)
    usage.audio_input_tokens, usage.audio_output_tokens = 800, 400
    expected = (200 * text_in + 800 * audio_in + 100 * text_out + 400 * audio_out) / MTOK
    assert PriceBook().compute("openai", model, usage).total == expected


@pytest.mark.parametrize("audio", ['"800"', "NaN", "1e308", "-5", "5000", "true"])
def test_audio_counts_that_are_not_a_part_of_the_tokens_are_never_more_than_them(audio):
    body = (
        '{"model": "gpt-realtime", "usage": {"prompt_tokens": 1000, "completion_tokens": 500,'
        f' "prompt_tokens_details": {{"audio_tokens": {audio}}}, "completion_tokens_details": {{"audio_tokens": {audio}}}}}}}'
    ).encode()
    usage = usage_from_json("openai", body)
    assert 0 <= usage.audio_input_tokens <= 1000 and 0 <= usage.audio_output_tokens <= 500
    assert PriceBook().compute("openai", "gpt-realtime", usage).total >= 0


@pytest.mark.parametrize("cached", ['"800"', "NaN", "1e308", "-5", "5000", "true", "null"])
def test_cached_image_counts_that_are_not_a_part_of_the_tokens_are_never_more_than_them(cached):
    body = (
        '{"object": "realtime.response", "usage": {"input_tokens": 1000, "output_tokens": 100,'
        ' "input_token_details": {"cached_tokens": 400, "image_tokens": 600,'
        f' "cached_tokens_details": {{"image_tokens": {cached}}}}}}}}}'
    ).encode()
    usage = usage_from_json("openai", body, "responses")
    assert 0 <= usage.image_cache_read_tokens <= 400 and 0 <= usage.image_input_tokens <= 600
    assert usage.image_cache_read_tokens + usage.image_input_tokens <= 600
    assert PriceBook().compute("openai", "gpt-realtime", usage).total >= 0


IMAGE_USAGE = {
    "total_tokens": 5010,
    "input_tokens": 850,
    "input_tokens_details": {"text_tokens": 50, "image_tokens": 800},
    "output_tokens": 4160,
}


@pytest.mark.parametrize(
    ("model", "output_details", "expected"),
    [
        # gpt-image-1.5 per million: text $5 in, $10 out; image $8 in, $32 out (one 1024x1024 high-quality
        # image is 4,160 tokens: $0.133, the per-image price on the pricing page).
        ("gpt-image-1.5", {"text_tokens": 0, "image_tokens": 4160}, (50 * 5 + 800 * 8 + 4160 * 32) / MTOK),
        # Without the split, the images API's output tokens are "image tokens in the output image".
        ("gpt-image-1.5", None, (50 * 5 + 800 * 8 + 4160 * 32) / MTOK),
        # gpt-image-1: text $5 in, image $10 in, $40 out; its answer may say nothing of the output's kind.
        ("gpt-image-1", None, (50 * 5 + 800 * 10 + 4160 * 40) / MTOK),
        # gpt-image-1-mini: text $2 in, image $2.50 in, $8 out.
        ("gpt-image-1-mini", {"image_tokens": 4160}, (50 * 2 + 800 * Decimal("2.5") + 4160 * 8) / MTOK),
    ],
)
def test_image_tokens_are_billed_at_the_image_rates(model, output_details, expected):
    usage_json = IMAGE_USAGE | ({"output_tokens_details": output_details} if output_details else {})
    usage = usage_from_json("openai", json.dumps({"created": 1, "data": [], "usage": usage_json}).encode())
    assert usage.image_input_tokens == 800
    assert PriceBook().compute("openai", model, usage).total == expected


@pytest.mark.parametrize("event_type", ["image_generation.completed", "image_edit.completed"])
def test_the_usage_of_an_image_streams_completed_event_is_image_output(event_type):
    event = {"type": event_type, "b64_json": "iVBORw0KGgo=", "usage": IMAGE_USAGE}
    usage = Usage()
    openai_provider.read_payload(usage, event)
    assert (usage.image_input_tokens, usage.image_output_tokens) == (800, 4160)
    assert PriceBook().compute("openai", "gpt-image-1.5", usage).total == (50 * 5 + 800 * 8 + 4160 * 32) / MTOK


def test_image_tokens_of_a_model_without_image_rates_are_billed_as_text():
    # gpt-4o reads images as input tokens at its text rate ($2.50 in, $10 out per million).
    body = {"usage": IMAGE_USAGE, "model": "gpt-4o"}
    usage = usage_from_json("openai", json.dumps(body).encode(), "responses")
    assert PriceBook().compute("openai", "gpt-4o", usage).total == (850 * Decimal("2.5") + 4160 * 10) / MTOK


@pytest.mark.parametrize("images", ['"800"', "-5", "5000", "true", "1e3"])
def test_image_counts_are_never_more_than_the_tokens_they_are_part_of(images):
    details = f'{{"image_tokens": {images}}}'
    body = f'{{"usage": {{"input_tokens": 850, "input_tokens_details": {details}, "output_tokens": 100, "output_tokens_details": {details}}}}}'
    usage = usage_from_json("openai", body.encode(), "responses")
    assert 0 <= usage.image_input_tokens <= 850 and 0 <= usage.image_output_tokens <= 100
    assert PriceBook().compute("openai", "gpt-image-1.5", usage).total >= 0


def test_tokens_of_a_model_priced_per_character_or_audio_hour_are_unpriced_not_free():
    # A speech stream's done event counts tokens; tts-1 is billed per character, which no answer gives.
    speech = Usage(input_tokens=14, output_tokens=101)
    for model in ("tts-1", "tts-1-hd", "whisper-1", "gpt-live-1"):
        assert PriceBook().compute("openai", model, speech) == UNPRICED, model  # before: $0, priced
    # gpt-4o-mini-tts: 14 text tokens in at $0.60 and 101 audio tokens out at $12 per million.
    assert PriceBook().compute("openai", "gpt-4o-mini-tts", speech).total == Decimal("0.0012204")
    # Embeddings have no output price and no output: 1,000 tokens at $0.02 per million.
    assert PriceBook().compute("openai", "text-embedding-3-small", Usage(1000, 0)).total == Decimal("0.00002")
