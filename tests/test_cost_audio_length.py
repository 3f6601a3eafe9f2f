"""Transcriptions billed by the length of their audio: ``usage: {"type": "duration", "seconds": ...}``.

The openai SDK's ``Transcription.usage`` is either token counts or ``UsageDuration`` ("usage
statistics for models billed by audio input duration"). Prices from genai-prices: whisper-1 $0.36
and gpt-transcribe $0.27 per hour of input audio ($0.006 and $0.0045 a minute).
"""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from ccproxy_core.accounting.cost import UNPRICED, PriceBook
from ccproxy_core.accounting.usage import usage_from_json

from .raw_upstream import json_answer, raw_upstream


def _answer(seconds: object) -> bytes:
    return json.dumps({"text": "hello there", "usage": {"type": "duration", "seconds": seconds}}).encode()


@pytest.mark.parametrize(
    ("model", "seconds", "expected"),
    [
        ("whisper-1", 120, Decimal("0.012")),  # two minutes at $0.006
        ("whisper-1", 9.5, Decimal("0.00095")),
        ("gpt-transcribe", 3600, Decimal("0.27")),
        ("whisper-1", 0, Decimal(0)),
    ],
)
def test_a_transcription_billed_by_its_audios_length_is_priced_by_the_hour(model, seconds, expected):
    usage = usage_from_json("openai", _answer(seconds))
    cost = PriceBook().compute("openai", model, usage)
    assert cost.priced and cost.total == cost.input == expected  # before: unpriced


@pytest.mark.parametrize("seconds", [-1, "120", None, True, 1e30, [120], {"value": 120}])
def test_an_audio_length_that_is_no_length_leaves_the_cost_unknown(seconds):
    usage = usage_from_json("openai", _answer(seconds))
    assert PriceBook().compute("openai", "whisper-1", usage) == UNPRICED


def test_a_length_for_a_model_priced_by_tokens_is_unpriced_not_free():
    usage = usage_from_json("openai", _answer(60))
    assert PriceBook().compute("openai", "gpt-4o-transcribe", usage) == UNPRICED


def test_a_whisper_transcription_through_the_proxy_records_its_cost(proxy_factory, recorder):
    with raw_upstream({"": json_answer(b"200 OK", _answer(42))}) as upstream:
        proxy = proxy_factory(plugins=[recorder], upstream_url=upstream.url)
        client = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-test", max_retries=0)
        answer = client.audio.transcriptions.create(model="whisper-1", file=("clip.wav", b"RIFF" * 64, "audio/wav"))
        [record] = recorder.wait_for_ends(1)
    assert answer.text == "hello there" and answer.usage.seconds == 42
    assert (record.model, record.status_code, record.priced) == ("whisper-1", 200, True)
    assert record.cost_usd == Decimal("0.0042") and record.cost_input_usd == Decimal("0.0042")
    assert record.tokens_input is None and record.tokens_output is None  # billed by length, not tokens
