"""OpenAI's other metered endpoints as the mock speaks them, from OpenAI's API reference.

``POST /v1/embeddings``
    ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model",
    "usage": {"prompt_tokens", "total_tokens"}}``; each vector has ``dimensions`` (default 8)
    values, as floats or, with ``encoding_format: base64``, as little-endian float32 bytes in
    base64. Tokens: characters of each input string // 4 (at least 1), or the length of a
    token array.
``POST /v1/completions`` (legacy)
    a ``text_completion`` with the usual answer text and chat-style usage; prompt tokens are
    the characters of ``prompt`` // 4.
``POST /v1/moderations``
    one result per input, nothing flagged; no usage (moderations are free).
``POST /v1/images/generations``
    ``data[].b64_json`` and, as gpt-image models report it, ``usage`` with ``input_tokens``
    (the prompt's), ``output_tokens`` (272 per image, the smallest low-quality size) and details.
``POST /v1/audio/transcriptions`` (multipart)
    ``{"text", "usage": {"type": "tokens", "input_tokens", "input_token_details",
    "output_tokens", "total_tokens"}}``: input tokens are the audio file's bytes // 100,
    output tokens those of the answer text.
"""

from __future__ import annotations

import base64
import struct
import time
from typing import Any

from ccproxy_core.testing.mock_upstream.answers import JSON_CONTENT_TYPE, InvalidRequest, JsonAnswer, dump, json_object
from ccproxy_core.testing.mock_upstream.faults import RequestPlan
from ccproxy_core.testing.mock_upstream.tokens import (
    CHARACTERS_PER_TOKEN,
    answer_text,
    output_tokens,
    prompt_characters,
)

DEFAULT_DIMENSIONS = 8
MAX_DIMENSIONS = 3072
IMAGE_OUTPUT_TOKENS = 272
AUDIO_BYTES_PER_TOKEN = 100
# A 1x1 transparent PNG: a valid image for clients that decode it.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def json_payload(body: bytes, required: str) -> dict[str, Any]:
    """A JSON request with ``model`` and the ``required`` field; InvalidRequest otherwise."""
    payload = json_object(body)
    if required not in payload:
        raise InvalidRequest(f"{required}: Field required", required)
    return payload


def _model(payload: dict[str, Any], default: str | None = None) -> str:
    model = payload.get("model", default)
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string)", "model")
    return model


def _tokens_of(text: Any) -> int:
    if isinstance(text, list) and all(isinstance(token, int) for token in text):
        return max(1, len(text))
    return max(1, prompt_characters(text) // CHARACTERS_PER_TOKEN)


def _inputs(value: Any) -> list[Any]:
    if isinstance(value, str) or (isinstance(value, list) and value and all(isinstance(v, int) for v in value)):
        return [value]
    if isinstance(value, list) and value:
        return value
    raise InvalidRequest("input: must be a string, a list of strings or token arrays", "input")


def embeddings(body: bytes, headers: dict[str, str]) -> JsonAnswer:
    """The answer to ``POST /v1/embeddings``."""
    payload = json_payload(body, "input")
    model = _model(payload)
    dimensions = payload.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise InvalidRequest(f"dimensions: must be an integer from 1 to {MAX_DIMENSIONS}", "dimensions")
    as_base64 = payload.get("encoding_format") == "base64"
    inputs = _inputs(payload["input"])
    data = []
    for index in range(len(inputs)):
        vector = [round(((index + 1) * (k + 3) % 17) / 17 - 0.5, 6) for k in range(dimensions)]
        encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = sum(_tokens_of(text) for text in inputs)
    answer = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(answer))


def legacy_completion(body: bytes, headers: dict[str, str], plan: RequestPlan, completion_id: str) -> JsonAnswer:
    """The answer to ``POST /v1/completions`` (non-streamed)."""
    payload = json_payload(body, "prompt")
    prompt = sum(_tokens_of(text) for text in _inputs(payload["prompt"]))
    completion = output_tokens(plan.delta_count)
    answer = {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": _model(payload),
        "choices": [{"text": answer_text(plan.delta_count), "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }
    return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(answer))


def moderation(body: bytes, headers: dict[str, str], moderation_id: str) -> JsonAnswer:
    """The answer to ``POST /v1/moderations``: nothing flagged."""
    payload = json_payload(body, "input")
    results = [
        {
            "flagged": False,
            "categories": dict.fromkeys(MODERATION_CATEGORIES, False),
            "category_scores": dict.fromkeys(MODERATION_CATEGORIES, 0.0001),
            "category_applied_input_types": {name: ["text"] for name in MODERATION_CATEGORIES},
        }
        for _ in _inputs(payload["input"])
    ]
    answer = {"id": moderation_id, "model": _model(payload, "omni-moderation-latest"), "results": results}
    return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(answer))


def image_generation(body: bytes, headers: dict[str, str]) -> JsonAnswer:
    """The answer to ``POST /v1/images/generations``."""
    payload = json_payload(body, "prompt")
    count = payload.get("n", 1)
    if not isinstance(count, int) or not 1 <= count <= 10:
        raise InvalidRequest("n: must be an integer from 1 to 10", "n")
    prompt = _tokens_of(payload["prompt"])
    answer = {
        "created": int(time.time()),
        "data": [{"b64_json": base64.b64encode(TINY_PNG).decode()} for _ in range(count)],
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"text_tokens": prompt, "image_tokens": 0},
            "output_tokens": IMAGE_OUTPUT_TOKENS * count,
            "total_tokens": prompt + IMAGE_OUTPUT_TOKENS * count,
        },
    }
    return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(answer))


def transcription(fields: dict[str, Any], headers: dict[str, str], plan: RequestPlan) -> JsonAnswer:
    """The answer to ``POST /v1/audio/transcriptions`` from its multipart fields."""
    audio = fields.get("file")
    if not isinstance(audio, bytes):
        raise InvalidRequest("file: Field required (the audio file)", "file")
    _model(fields)
    audio_tokens = max(1, len(audio) // AUDIO_BYTES_PER_TOKEN)
    text = answer_text(plan.delta_count)
    out = output_tokens(plan.delta_count)
    answer = {
        "text": text,
        "usage": {
            "type": "tokens",
            "input_tokens": audio_tokens,
            "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
            "output_tokens": out,
            "total_tokens": audio_tokens + out,
        },
    }
    return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(answer))
