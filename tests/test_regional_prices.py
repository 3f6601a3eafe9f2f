"""OpenAI's data residency hosts bill models released since 5 March 2026 at 1.1 times the list price.

From OpenAI's data residency guide (developers.openai.com/api/docs/guides/data-residency): projects
with data residency are served from regional hosts (``us.api.openai.com``, ``eu.api.openai.com``,
...), and "data residency endpoints are charged a 10% uplift for models released on or after
March 5, 2026". Prices by hand from OpenAI's model pages, USD per million tokens: gpt-5.4 $2.50
input, $0.25 cached input, $15 output; gpt-4o-mini $0.15, $0.075, $0.60.
"""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from ccproxy_core.forwarding.upstream import regional_providers
from ccproxy_core.providers.openai_regions import is_regional, regional_uplift
from ccproxy_core.testing import make_settings

from .raw_upstream import json_answer, upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)
USAGE = {"prompt_tokens": 1000, "completion_tokens": 500, "prompt_tokens_details": {"cached_tokens": 200}}


def completion(model: str) -> bytes:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_780_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."}, "finish_reason": "stop"}],
        "usage": {**USAGE, "total_tokens": 1500},
    }
    return json_answer(b"200 OK", json.dumps(body).encode())


MODELS = ["gpt-5.4", "gpt-5.4-2026-03-05", "gpt-4o-mini", "gpt-oss-120b"]
upstream, _ = upstream_and_proxy_fixtures({model: completion(model) for model in MODELS})


def by_hand(input_rate: str, cached_rate: str, output_rate: str) -> Decimal:
    return (800 * Decimal(input_rate) + 200 * Decimal(cached_rate) + 500 * Decimal(output_rate)) / MTOK


GPT_5_4 = by_hand("2.50", "0.25", "15")  # $0.00955
GPT_4O_MINI = by_hand("0.15", "0.075", "0.60")  # $0.000435


def costs(proxy_factory, recorder, upstream, regional: bool) -> dict[str, Decimal | None]:
    proxy = proxy_factory(
        upstream_url=upstream.url, plugins=[recorder], upstream={"openai_regional_processing": regional}
    )
    for model in MODELS:
        client = openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", default_headers={"x-raw": model})
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    records = recorder.wait_for_ends(len(MODELS))
    return {record.model: record.cost_usd for record in records}


def test_a_regional_host_bills_newer_models_a_tenth_more_and_leaves_those_of_unknown_release_unpriced(
    proxy_factory, recorder, upstream
):
    assert costs(proxy_factory, recorder, upstream, regional=True) == {
        "gpt-5.4": GPT_5_4 * Decimal("1.1"),  # before: the list price, a tenth under the bill
        "gpt-5.4-2026-03-05": GPT_5_4 * Decimal("1.1"),
        "gpt-4o-mini": GPT_4O_MINI,
        "gpt-oss-120b": None,
    }


def test_the_global_host_bills_every_model_at_its_list_price(proxy_factory, recorder, upstream):
    found = costs(proxy_factory, recorder, upstream, regional=False)
    assert (found["gpt-5.4"], found["gpt-4o-mini"]) == (GPT_5_4, GPT_4O_MINI)
    assert found["gpt-oss-120b"] is not None


@pytest.mark.parametrize(
    ("base_url", "setting", "regional"),
    [
        ("https://eu.api.openai.com", None, True),
        ("https://us.api.openai.com/v1", None, True),
        ("https://api.openai.com", None, False),
        ("https://eu.api.openai.com.example.net", None, False),
        ("https://gateway.example.net/openai", True, True),  # a gateway in front of a regional host
        ("https://eu.api.openai.com", False, False),
    ],
)
def test_regional_processing_is_known_from_the_base_url_unless_set(base_url, setting, regional):
    settings = make_settings("http://127.0.0.1:9", upstream={"openai_base_url": base_url})
    settings.upstream.openai_regional_processing = setting
    assert regional_providers(settings) == (frozenset({"openai"}) if regional else frozenset())


def test_only_openais_regional_hosts_are_regional():
    assert is_regional("https://jp.api.openai.com:443/v1")
    assert not is_regional("https://api.openai.com") and not is_regional("https://eu.api.openai.com.example.net")
    assert not is_regional("https://eu.api.anthropic.com") and not is_regional("http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("model", "uplift"),
    [
        ("gpt-5.4", "1.1"),
        ("gpt-5.4-pro", "1.1"),
        ("gpt-5.5-cyber", "1.1"),
        ("gpt-6-sol", "1.1"),
        ("gpt-6.1-terra", "1.1"),
        ("gpt-5.3-codex", "1"),
        ("gpt-5-mini", "1"),
        ("gpt-4.1-nano", "1"),
        ("gpt-4o", "1"),
        ("gpt-3.5-turbo", "1"),
        ("o3-pro", "1"),
        ("o4-mini-deep-research", "1"),
        ("ft:gpt-4o-mini-2024-07-18:org::abc", "1"),
        ("gpt-realtime", "1"),
        ("gpt-audio-mini-2026-06-01", "1.1"),  # a snapshot's date is its release
        ("gpt-realtime-mini-2025-12-15", "1"),
        ("ft:gpt-5.4-mini:acme:run-2025-01-01:abc", "1.1"),  # the tuned model's own name decides, not the suffix
        ("tts-1-hd-1106", "1"),
        ("gpt-image-2", None),
        ("text-embedding-4", None),  # a newer model of an older family is not known to be older
        ("o5-mini", None),
        ("gpt-realtime-2", None),
        ("gpt-4o-2024-13-45", None),
        ("a-model-of-someone-else", None),
    ],
)
def test_the_uplift_follows_the_release_of_the_model_priced(model, uplift):
    assert regional_uplift(model) == (Decimal(uplift) if uplift is not None else None)
