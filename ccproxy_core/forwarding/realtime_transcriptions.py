"""Input audio transcribed on a Realtime socket: billed apart from the answers, at its own model's price.

With input transcription on (``session.audio.input.transcription``, in the beta protocol
``session.input_audio_transcription``), the provider transcribes what the user says with the model
the session names (``gpt-4o-transcribe``, ``whisper-1``), and each
``conversation.item.input_audio_transcription.completed`` event reports that transcription's usage,
which OpenAI bills at the transcription model's price. Each is a record of its own, as an answer
the provider begins itself is: no client event asked for it.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.providers.openai import read_usage

TRANSCRIBED = "conversation.item.input_audio_transcription.completed"
SESSION_EVENTS = frozenset(
    {"session.created", "session.updated", "transcription_session.created", "transcription_session.updated"}
)
"""The events that say the session's transcription model (the last two: a beta transcription-only session's)."""
EVENT_MARKERS = (f'"{TRANSCRIBED}"', 'session.created"', 'session.updated"')
"""What a message holding one of these events contains, so that it is decoded (``session.created"`` ends
``"transcription_session.created"`` too)."""


def transcription_model(event: dict[str, Any]) -> str | None:
    """The transcription model a ``session.created`` or ``session.updated`` names; ``None`` when it has none on."""
    session = event.get("session")
    if not isinstance(session, dict):
        return None
    audio = session.get("audio")
    heard = audio.get("input") if isinstance(audio, dict) else None
    config = heard.get("transcription") if isinstance(heard, dict) else session.get("input_audio_transcription")
    model = config.get("model") if isinstance(config, dict) else None
    return model if isinstance(model, str) and model else None


def read_transcription(exchange: Exchange, event: dict[str, Any], size: int, now: float) -> None:
    """A transcription's record: its usage (a ``tokens`` usage; one of ``duration`` leaves it unpriced), whole at once."""
    exchange.first_byte_at = exchange.upstream_headers_at = exchange.response_started_at = now
    exchange.upstream_done_at = now
    exchange.response_bytes = size
    read_usage(exchange.usage, event.get("usage"))
    if exchange.stream_state is not None:
        exchange.stream_state.terminal_seen = True
