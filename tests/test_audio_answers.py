"""OpenAI's audio answers are answers: speech as audio bytes, transcripts as plain text, and their streams.

Written from OpenAI's API reference: ``/v1/audio/speech`` answers with the audio file (mp3 by
default), or with ``stream_format: "sse"`` a stream of ``speech.audio.delta`` events ending with
``speech.audio.done`` and its usage; ``/v1/audio/transcriptions`` answers with the transcript as
text for ``response_format: "text"``, or with ``stream: true`` a stream of
``transcript.text.delta`` events ending with ``transcript.text.done`` and its usage. None of them
ends with ``data: [DONE]``. The real ``openai`` SDK reads every one of them without complaint.
"""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai

from .raw_upstream import upstream_and_proxy_fixtures

MTOK = Decimal(1_000_000)
PORTAL = b"<html><body>Sign in to the network</body></html>"
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64" + bytes(range(256)) * 8


def answer(content_type: bytes, body: bytes, status: bytes = b"200 OK") -> bytes:
    head = b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n" % (status, content_type, len(body))
    return head + body


def events(*payloads: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(payload).encode() + b"\n\n" for payload in payloads)


TRANSCRIPT_USAGE = {
    "type": "tokens",
    "input_tokens": 1000,
    "input_token_details": {"text_tokens": 100, "audio_tokens": 900},
    "output_tokens": 50,
    "total_tokens": 1050,
}
ANSWERS = {
    "mp3": answer(b"audio/mpeg", MP3),
    "text": answer(b"text/plain; charset=utf-8", b"Hello there.\n"),
    "transcript-stream": answer(
        b"text/event-stream",
        events(
            {"type": "transcript.text.delta", "delta": "Hello"},
            {"type": "transcript.text.delta", "delta": " there."},
            {"type": "transcript.text.done", "text": "Hello there.", "usage": TRANSCRIPT_USAGE},
        ),
    ),
    "speech-stream": answer(
        b"text/event-stream",
        events(
            {"type": "speech.audio.delta", "audio": "SUQzBAAAAAAA"},
            {"type": "speech.audio.done", "usage": {"input_tokens": 14, "output_tokens": 101, "total_tokens": 115}},
        ),
    ),
    "portal": answer(b"text/html", PORTAL),
    "image-edit": answer(
        b"application/json",
        json.dumps(
            {
                "created": 1,
                "data": [{"b64_json": "iVBORw0KGgo="}],
                "usage": {
                    "input_tokens": 1050,
                    "input_tokens_details": {"text_tokens": 50, "image_tokens": 1000},
                    "output_tokens": 4160,
                    "total_tokens": 5210,
                },
            }
        ).encode(),
    ),
    "webrtc-call": answer(b"application/sdp", b"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n", b"201 Created"),
}

upstream, proxy = upstream_and_proxy_fixtures(ANSWERS)


def client(proxy, kind: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", base_url=proxy.url + "/v1", default_headers={"x-raw": kind})


def test_speech_answered_as_audio_is_a_success(proxy, recorder):
    speech = client(proxy, "mp3").audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="Hello there.")
    assert speech.content == MP3
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.priced) == (200, None, False)


def test_a_transcript_answered_as_text_is_a_success(proxy, recorder):
    transcript = client(proxy, "text").audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("hello.wav", b"RIFF....WAVEfmt "), response_format="text"
    )
    assert transcript.strip() == "Hello there."
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None)


def test_a_transcription_stream_ends_with_its_done_event_and_carries_the_usage(proxy, recorder):
    stream = client(proxy, "transcript-stream").audio.transcriptions.create(
        model="gpt-4o-transcribe", file=("hello.wav", b"RIFF....WAVEfmt "), stream=True
    )
    assert [event.type for event in stream][-1] == "transcript.text.done"
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.streaming) == (200, None, True)
    assert (record.model, record.tokens_input, record.tokens_output) == ("gpt-4o-transcribe", 1000, 50)
    assert record.ttft_ms is not None
    # gpt-4o-transcribe per million: text input $2.50, audio input $6, output $10; its model is a form field.
    assert record.cost_usd == (100 * Decimal("2.5") + 900 * 6 + 50 * 10) / MTOK


def test_a_speech_stream_ends_with_its_done_event_and_is_priced(proxy, recorder):
    with client(proxy, "speech-stream").audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="alloy", input="Hello there.", stream_format="sse"
    ) as response:
        body = response.read()
    assert body.endswith(b'"total_tokens": 115}}\n\n')
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type, record.streaming) == (200, None, True)
    # gpt-4o-mini-tts: $0.60 per million text input tokens, $12 per million audio output tokens.
    assert record.cost_usd == (14 * Decimal("0.60") + 101 * 12) / MTOK


def test_a_webrtc_call_answered_with_its_session_description_is_a_success(proxy, recorder):
    headers = {"authorization": "Bearer sk-test", "content-type": "application/sdp", "x-raw": "webrtc-call"}
    response = httpx.post(proxy.url + "/v1/realtime/calls", content=b"v=0\r\n", headers=headers, timeout=10)
    assert (response.status_code, response.content) == (201, ANSWERS["webrtc-call"].split(b"\r\n\r\n", 1)[1])
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (201, None)


def test_an_html_page_is_still_no_answer_where_audio_is(proxy, recorder):
    speech = client(proxy, "portal").audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="x")
    assert speech.content == PORTAL
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, "upstream_invalid_json")


def test_an_image_edit_is_priced_by_the_model_named_in_its_form(proxy, recorder):
    edited = client(proxy, "image-edit").images.edit(
        model="gpt-image-1", image=("in.png", b"\x89PNG\r\n\x1a\n" + bytes(500)), prompt="Add a hat"
    )
    assert edited.data[0].b64_json == "iVBORw0KGgo="
    [record] = recorder.wait_for_ends(1)
    assert (record.model, record.tokens_input, record.tokens_output) == ("gpt-image-1", 1050, 4160)
    # gpt-image-1 per million: text input $5, image input $10, image output $40.
    assert record.cost_usd == (50 * 5 + 1000 * 10 + 4160 * 40) / MTOK
