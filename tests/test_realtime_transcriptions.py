"""Input audio transcribed on a Realtime socket is billed apart, at the transcription model's price: each
``conversation.item.input_audio_transcription.completed`` is a record of its own, its model the session's."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.hostile_upstream import hostile_upstream

from .test_realtime_answers import M, create, created, done, talk


@pytest.fixture
def provider():
    with hostile_upstream() as server:
        yield server


def session_event(kind: str, session: dict) -> str:
    return json.dumps(
        {"type": kind, "event_id": "ev_s", "session": {"type": "realtime", "model": "gpt-realtime", **session}}
    )


def transcribed(usage: dict) -> str:
    event = {"item_id": "item_1", "content_index": 0, "transcript": "hello", "usage": usage}
    return json.dumps({"type": "conversation.item.input_audio_transcription.completed", "event_id": "ev_t", **event})


def test_input_audio_transcribed_is_a_record_of_its_own_at_the_transcription_model_s_price(
    provider, proxy_factory, recorder
):
    # OpenAI bills input transcription apart, at its model's price: gpt-4o-transcribe $6 per million audio
    # input tokens and $10 per million output tokens. Before, it was never recorded.
    tokens = {"type": "tokens", "input_tokens": 1000, "output_tokens": 100, "total_tokens": 1100}
    usage = {**tokens, "input_token_details": {"text_tokens": 0, "audio_tokens": 1000}}
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    configured = session_event(
        "session.updated", {"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    )
    update = json.dumps({"type": "session.update", "session": {"type": "realtime"}})
    commit = json.dumps({"type": "input_audio_buffer.commit"})
    talk(
        proxy,
        provider,
        [
            (update, [configured]),
            (commit, [transcribed(usage)]),
            (create("c1"), [created("resp_1"), done("resp_1", 100, 20)]),
        ],
    )
    transcription, answer = sorted(recorder.wait_for_ends(2), key=lambda record: record.model or "")
    assert (transcription.model, transcription.tokens_input, transcription.tokens_output) == (
        "gpt-4o-transcribe",
        1000,
        100,
    )
    assert transcription.cost_usd == (1000 * 6 + 100 * 10) / M and transcription.error_type is None
    assert (answer.model, answer.cost_usd) == ("gpt-realtime", (100 * 4 + 20 * 16) / M)


def test_a_transcription_in_seconds_by_the_beta_protocol_s_model_is_priced_by_its_length(
    provider, proxy_factory, recorder
):
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    configured = session_event("session.created", {"input_audio_transcription": {"model": "whisper-1"}})
    talk(
        proxy,
        provider,
        [
            (
                json.dumps({"type": "input_audio_buffer.commit"}),
                [configured, transcribed({"type": "duration", "seconds": 3.2})],
            )
        ],
    )
    [record] = recorder.wait_for_ends(1)
    # whisper-1 bills $0.36 an hour of audio: 3.2 s cost $0.00032 (unpriced before audio lengths were priced).
    assert (record.model, record.cost_usd, record.priced) == (
        "whisper-1",
        Decimal("3.2") * Decimal("0.36") / 3600,
        True,
    )


def test_a_transcription_only_session_of_the_beta_protocol_names_the_model_priced(provider, proxy_factory, recorder):
    usage = {"type": "tokens", "input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200}
    usage["input_token_details"] = {"audio_tokens": 1000, "text_tokens": 0}
    session = {"object": "realtime.transcription_session", "input_audio_transcription": {"model": "gpt-4o-transcribe"}}
    configured = json.dumps({"type": "transcription_session.updated", "event_id": "ev_s", "session": session})
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    talk(proxy, provider, [("{}", [configured, transcribed(usage)])])
    [record] = recorder.wait_for_ends(1)
    assert (record.model, record.cost_usd) == ("gpt-4o-transcribe", (1000 * 6 + 200 * 10) / M)  # before: unpriced


@pytest.mark.parametrize(
    "usage",
    [
        {"type": "tokens", "input_tokens": -5, "output_tokens": 10},
        {"type": "tokens", "input_tokens": 2**41, "output_tokens": 10},
        {"type": "tokens", "input_tokens": "1000", "output_tokens": 1e400},
        "tokens",
        None,
    ],
)
def test_a_transcription_s_hostile_usage_leaves_it_unpriced_and_the_socket_working(
    provider, proxy_factory, recorder, usage
):
    configured = session_event(
        "session.updated", {"audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}}}
    )
    proxy = proxy_factory(plugins=[recorder], upstream_url=provider.url)
    talk(
        proxy,
        provider,
        [("{}", [configured, transcribed(usage)]), (create("c1"), [created("r1"), done("r1", 100, 20)])],
    )
    transcription, answer = sorted(recorder.wait_for_ends(2), key=lambda record: record.model or "")
    assert (transcription.model, transcription.priced, transcription.cost_usd) == ("gpt-4o-transcribe", False, None)
    assert answer.cost_usd == (100 * 4 + 20 * 16) / M
