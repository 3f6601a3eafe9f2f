"""OpenAI's Chat Completions API: routes, headers, error shapes, and the usage and stream readers.

Usage: ``usage.prompt_tokens`` (cached tokens included), ``completion_tokens`` (reasoning
tokens included), ``prompt_tokens_details.cached_tokens``,
``completion_tokens_details.reasoning_tokens``, and the top-level ``service_tier`` the
answer was served at (``default``, ``flex``, ``priority``, ``scale``). A stream carries
usage only in its last chunk, and only when the client asked for
``stream_options.include_usage``. Errors are ``{"error": {"message", "type", "code"}}``,
in a body or as a stream chunk after HTTP 200; ``code`` (``rate_limit_exceeded``) is the
more telling name. A whole stream ends with ``data: [DONE]``; the first content token is
the first delta with non-empty ``content``, ``refusal`` or ``tool_calls``.

Counts are stored in Anthropic's convention, where input excludes cache reads and writes:
``input_tokens = prompt_tokens - cached_tokens - cache_write_tokens``, ``cache_read_tokens =
cached_tokens``, ``cache_write_tokens`` as the details give them (models that bill cache writes), of
which those kept 12 hours in ``cache_write_1h_tokens``, where Anthropic's one-hour writes go.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.sse_parser import DONE_LINE, iter_data_fields, search_data_lines, through_event
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers.base import (
    Provider,
    StreamReader,
    StreamState,
    billed_count,
    decode_event,
    decode_json,
    read_error,
    read_label,
    read_model,
    routes,
    spells_with_escapes,
    token_count,
)
from ccproxy_core.providers.openai_regions import regional_uplift
from ccproxy_core.providers.openai_svg import add_svg_authoring
from ccproxy_core.providers.stream_options import with_include_usage

NAME = "openai"
MAX_AUDIO_SECONDS = 10**7
"""More seconds of audio than any one request can bill (some 116 days): a count past it is no count."""
CHAT_COMPLETIONS = "/v1/chat/completions"
RESPONSES = "responses"
STORED_RESPONSE = "stored_response"
REALTIME = "realtime"

ROUTES = (
    *routes(
        NAME,
        "usage",
        "POST " + CHAT_COMPLETIONS,
        "POST /v1/completions",
        "POST /v1/embeddings",
        "POST /v1/audio/transcriptions",
        "POST /v1/audio/translations",
        "POST /v1/audio/speech",
        "POST /v1/images/generations",
        "POST /v1/images/edits",
        "POST /v1/images/variations",
    ),
    *routes(NAME, "free", "POST /v1/moderations", "POST /v1/responses/input_tokens"),
    *routes(NAME, RESPONSES, "POST /v1/responses", "POST /v1/responses/compact"),
    # A background response is billed on the retrieval that first sees it finished; cancelling one
    # answers with the response too, as far as it got, with its usage.
    *routes(NAME, STORED_RESPONSE, "GET /v1/responses/{response_id}", "POST /v1/responses/{response_id}/cancel"),
    *routes(
        NAME,
        "none",
        "DELETE /v1/responses/{response_id}",
        "GET /v1/responses/{response_id}/input_items",
        "GET /v1/chat/completions",
        "GET /v1/chat/completions/{completion_id}",
        "POST /v1/chat/completions/{completion_id}",
        "DELETE /v1/chat/completions/{completion_id}",
        "GET /v1/chat/completions/{completion_id}/messages",
        "POST /v1/batches",
        "GET /v1/batches",
        "GET /v1/batches/{batch_id}",
        "POST /v1/batches/{batch_id}/cancel",
        "POST /v1/uploads",
        "POST /v1/uploads/{upload_id}/parts",
        "POST /v1/uploads/{upload_id}/complete",
        "POST /v1/uploads/{upload_id}/cancel",
    ),
)
WEBSOCKET_READERS = {"/v1/responses": RESPONSES, "/v1/realtime": REALTIME}
"""Paths whose WebSocket upgrades are forwarded to OpenAI, and how their events are read."""

LOCAL_ERROR_TYPES = {
    502: "server_error",
    504: "timeout",
    413: "invalid_request_error",
    404: "invalid_request_error",
    429: "insufficient_quota",
}  # 429: a plugin (a spending budget) refused the request

RATE_LIMIT_HEADERS = {
    f"x-ratelimit-{kind}-{resource}": f"{resource}_{kind}"
    for resource in ("requests", "tokens")
    for kind in ("limit", "remaining")
} | {"retry-after": "retry_after_seconds", "retry-after-ms": "retry_after_ms"}

# Every chunk of a stream with include_usage has "usage": null; only a real object counts. The chunk
# that ends a choice has a string finish_reason (null in every chunk before it). One search for both.
_USAGE_OR_FINISH_MARKER = re.compile(rb'"usage"\s*:\s*\{|"finish_reason"\s*:\s*"')
_GENERATED_ANSWERS = frozenset({"chat.completion", "chat.completion.chunk", "text_completion"})
MAX_CHOICES_READ = 128
_ERROR_MARKER = b'"error"'
# Chat deltas carry ``content``, ``refusal``, ``tool_calls``, the deprecated ``function_call``, or an
# audio answer's ``audio.transcript``; legacy completions' chunks ``text``.
_FIRST_TOKEN = re.compile(
    rb'"(?:content|refusal|text|transcript)"\s*:\s*"[^"]|"tool_calls"\s*:\s*\[\s*\{\s*"|"function_call"\s*:\s*\{\s*"'
    rb'|"type"\s*:\s*"(?:(?:transcript\.text|speech\.audio)\.delta|image_(?:generation|edit)\.(?:partial_image|completed))"'
)
_IMAGE_COMPLETED_EVENTS = frozenset({"image_generation.completed", "image_edit.completed"})
# Streams of images (``/v1/images/generations`` and ``edits``), transcriptions and speech (``stream``,
# ``stream_format: "sse"``) end with their own last event, not ``[DONE]``.
_MEDIA_DONE = re.compile(
    rb'"type"\s*:\s*"(?:image_(?:generation|edit)\.completed|transcript\.text\.done|speech\.audio\.done)"'
)


def error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    """OpenAI's error object, so SDKs raise their usual exceptions (OpenAI names the request in a header only)."""
    # OpenAI's own quota refusal repeats its type as the code; its other errors ccproxy stands in for have none.
    code = error_type if error_type == "insufficient_quota" else None
    return json.dumps({"error": {"message": message, "type": error_type, "param": None, "code": code}}).encode()


def read_payload(usage: Usage, payload: dict[str, Any]) -> None:
    """A whole response body or one stream chunk: the two have the same fields."""
    read_model(usage, payload.get("model"))
    read_usage(usage, payload.get("usage"))
    kind = payload.get("object")
    if isinstance(kind, str) and kind in _GENERATED_ANSWERS:
        require_output_count(usage, payload.get("usage"))
    if _is_image_answer(payload):
        if not usage.image_output_tokens:
            # The images API's ``output_tokens`` are "the number of image tokens in the output image":
            # where the answer does not split them, they are all image tokens.
            raw = payload.get("usage")
            if isinstance(raw, dict) and not isinstance(raw.get("output_tokens_details"), dict):
                usage.image_output_tokens = usage.output_tokens or 0
        add_svg_authoring(usage, payload.get("svg_usage"))
    usage.service_tier = read_label(payload.get("service_tier")) or usage.service_tier
    usage.finish_reason = _first_choice_finish_reason(payload.get("choices")) or usage.finish_reason
    read_error(usage, payload.get("error"), prefer_code=True)


def require_output_count(usage: Usage, raw: Any) -> None:
    """A usage of generated text always counts its output: one that does not leaves the bill unknown
    (the input alone is not what the provider charged)."""
    if isinstance(raw, dict) and raw.get("completion_tokens") is None and raw.get("output_tokens") is None:
        usage.bad_counts = True


def is_error_envelope(payload: dict[str, Any]) -> bool:
    """``{"error": ...}`` in place of the answer. The API's objects (a response, a fine-tuning job, a video)
    name their ``object`` and may carry an ``error`` of their own: that is no failure of the call."""
    return "object" not in payload and bool(payload.get("error"))


def _first_choice_finish_reason(choices: Any) -> str | None:
    """The ``finish_reason`` of choice 0 (a stream's chunks carry one choice each, by ``index``)."""
    if not isinstance(choices, list):
        return None
    for choice in choices[:MAX_CHOICES_READ]:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return read_label(choice.get("finish_reason"))
    return None


def _is_image_answer(payload: dict[str, Any]) -> bool:
    """An images API answer (``created`` and ``data``, no ``object``) or an image stream's completed event."""
    kind = payload.get("type")
    if isinstance(kind, str):
        return kind in _IMAGE_COMPLETED_EVENTS
    return isinstance(payload.get("data"), list) and "object" not in payload


def read_usage(usage: Usage, raw: Any) -> None:
    """Chat-style usage (``prompt_tokens``, ``completion_tokens``), or the style of the
    Responses, Realtime, image and audio endpoints (``input_tokens``, ``output_tokens``), or the
    length of audio a transcription is billed by (``{"type": "duration", "seconds": ...}``)."""
    if not isinstance(raw, dict):
        return
    if raw.get("type") == "duration":
        _read_audio_length(usage, raw.get("seconds"))
        return
    chat_style = "prompt_tokens" in raw
    prompt = billed_count(usage, raw.get("prompt_tokens" if chat_style else "input_tokens"))
    completion = billed_count(usage, raw.get("completion_tokens" if chat_style else "output_tokens"))
    details = (
        raw.get("prompt_tokens_details")
        if chat_style
        else (raw.get("input_tokens_details") or raw.get("input_token_details"))
    )
    cached = billed_count(usage, details.get("cached_tokens")) if isinstance(details, dict) else None
    # Tokens written to the cache are input tokens too, billed at their own rate where the model has one.
    written = billed_count(usage, details.get("cache_write_tokens")) if isinstance(details, dict) else None
    if prompt is not None:
        if (cached or 0) + (written or 0) > prompt:  # parts of the input larger than it: which count is wrong?
            usage.bad_counts = True
        cached_in_prompt = min(cached or 0, prompt)
        written_in_prompt = min(written or 0, prompt - cached_in_prompt)
        usage.input_tokens = prompt - cached_in_prompt - written_in_prompt
        usage.cache_read_tokens = cached_in_prompt
        usage.cache_write_tokens = written_in_prompt
    elif cached is not None:
        usage.cache_read_tokens = cached
    if isinstance(details, dict) and prompt is not None:
        _read_audio_input(usage, details)
        _read_image_input(usage, details)
        _read_twelve_hour_writes(usage, details)
    if completion is not None:
        usage.output_tokens = completion
    output_details = raw.get("completion_tokens_details" if chat_style else "output_tokens_details")
    if not isinstance(output_details, dict):
        output_details = raw.get("output_token_details")  # the Realtime API's spelling
    if isinstance(output_details, dict):
        _read_output_details(usage, output_details, completion)


def _read_audio_length(usage: Usage, seconds: Any) -> None:
    """Seconds of audio, a number from 0 to :data:`MAX_AUDIO_SECONDS`; anything else leaves the cost unknown."""
    if type(seconds) in (int, float) and 0 <= seconds <= MAX_AUDIO_SECONDS:
        usage.audio_seconds = Decimal(str(seconds))
    else:
        usage.bad_counts = True


def _read_output_details(usage: Usage, details: dict[str, Any], completion: int | None) -> None:
    """Reasoning, audio and image tokens among the output tokens."""
    reasoning = token_count(details.get("reasoning_tokens"))
    if reasoning is not None:
        usage.reasoning_tokens = reasoning
    if completion is None:
        return
    usage.audio_output_tokens = min(token_count(details.get("audio_tokens")) or 0, completion)
    usage.image_output_tokens = min(
        token_count(details.get("image_tokens")) or 0, completion - usage.audio_output_tokens
    )


def _read_audio_input(usage: Usage, details: dict[str, Any]) -> None:
    """Audio among the input tokens (``audio_tokens``, cached ones under ``cached_tokens_details``)."""
    audio = token_count(details.get("audio_tokens"))
    if not audio:
        return
    cached = _cached_of_kind(details, "audio_tokens")
    usage.audio_cache_read_tokens = min(cached, audio, usage.cache_read_tokens or 0)
    usage.audio_input_tokens = min(audio - usage.audio_cache_read_tokens, usage.input_tokens or 0)


def _read_image_input(usage: Usage, details: dict[str, Any]) -> None:
    """Images among the input tokens, as audio: ``image_tokens`` counts the cached ones too (the
    Realtime API's ``cached_tokens_details.image_tokens``), which bill at their own cached rate."""
    images = token_count(details.get("image_tokens"))
    if not images:
        return
    cached = _cached_of_kind(details, "image_tokens")
    usage.image_cache_read_tokens = min(cached, images, (usage.cache_read_tokens or 0) - usage.audio_cache_read_tokens)
    usage.image_input_tokens = min(
        images - usage.image_cache_read_tokens, (usage.input_tokens or 0) - usage.audio_input_tokens
    )


def _read_twelve_hour_writes(usage: Usage, details: dict[str, Any]) -> None:
    """Of the cache writes, those kept 12 hours (``cache_write_tokens_details.ttl_12h_tokens``), billed
    higher than 30-minute ones: kept where Anthropic's one-hour writes go (``twelve_hour_writes``)."""
    written = details.get("cache_write_tokens_details")
    if isinstance(written, dict):
        usage.cache_write_1h_tokens = billed_count(usage, written.get("ttl_12h_tokens"))


def _cached_of_kind(details: dict[str, Any], kind: str) -> int:
    cached_details = details.get("cached_tokens_details")
    return (token_count(cached_details.get(kind)) if isinstance(cached_details, dict) else None) or 0


class OpenAIStreamReader(StreamReader):
    """Decodes the first JSON chunk (for the model and tier), then only usage and error chunks."""

    __slots__ = ("_first_chunk_pending",)

    def __init__(self) -> None:
        self._first_chunk_pending = True

    def read_block(self, usage: Usage, state: StreamState, block: bytes) -> None:
        if not state.first_token_seen and search_data_lines(_FIRST_TOKEN, block):
            state.first_token_seen = True
        done = DONE_LINE.search(block) if b"[DONE]" in block else None
        if done is not None:
            state.terminal_seen = state.over = True
            block = through_event(block, done.end())  # the stream's last word: nothing after it is read
        elif (b'.completed"' in block or b'.done"' in block) and search_data_lines(_MEDIA_DONE, block):
            state.terminal_seen = True
        if not (self._first_chunk_pending or _is_chunk_of_interest(block)):
            return
        for data in iter_data_fields(block):
            if data.removeprefix(b" ").startswith(b"[DONE]"):
                break  # the SDKs stop at an event whose data begins so, whatever follows in it
            if self._first_chunk_pending or _is_chunk_of_interest(data):
                chunk = decode_event(usage, state, data)
                if isinstance(chunk, dict):
                    self._first_chunk_pending = False
                    failed = bool(chunk.get("error"))
                    if failed:
                        # The SDKs raise on any such chunk, its error an object or a bare string. The
                        # provider's last word: a client that hangs up now had the whole answer.
                        state.error_seen = state.terminal_seen = state.over = True
                    read_payload(usage, chunk)
                    if failed:  # nothing after it reaches the client
                        return


def _is_chunk_of_interest(data: bytes) -> bool:
    return _ERROR_MARKER in data or _USAGE_OR_FINISH_MARKER.search(data) is not None or spells_with_escapes(data)


def price_context(usage: Usage) -> dict[str, str]:
    """genai-prices prices OpenAI's ``flex`` and ``priority`` tiers by ``service_tier``, and the Batch
    API's published rates (rounded: $0.13, not half of $0.25) by ``processing``."""
    if not usage.service_tier:
        return {}
    if usage.service_tier == "batch":
        return {"service_tier": "batch", "processing": "batch"}
    return {"service_tier": usage.service_tier}


def prepare_body(endpoint: str, body: bytes | bytearray, include_usage: bool) -> bytes | bytearray:
    """With ``UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE`` on, ask a chat stream for its usage.

    The one change ccproxy ever makes to a request: without it an OpenAI stream has no
    usage and its cost is unknown. The client then gets one extra chunk (``choices: []``,
    the usage) before ``[DONE]``, as if it had asked itself.
    """
    if not include_usage or endpoint != CHAT_COMPLETIONS:
        return body
    payload = decode_json(body)
    if not isinstance(payload, dict) or payload.get("stream") is not True:
        return body
    options = payload.get("stream_options")
    if options is not None and (not isinstance(options, dict) or "include_usage" in options):
        return body  # the client decided (even to say no): respect it
    return with_include_usage(body, "stream_options" in payload)


# The Responses API's readers live in their own module and build on ``read_usage`` above, so they
# can only be imported once it exists.
from ccproxy_core.providers.openai_responses import ResponsesStreamReader, read_response_body  # noqa: E402

PROVIDER = Provider(
    name=NAME,
    price_id="openai",
    default_base_url="https://api.openai.com",
    key_header="authorization",
    key_value=lambda key: f"Bearer {key}",
    request_id_header="x-request-id",
    routes=ROUTES,
    local_error_types=LOCAL_ERROR_TYPES,
    error_body=error_body,
    read_payload=read_payload,
    stream_reader=OpenAIStreamReader,
    price_context=price_context,
    price_calendar="America/Los_Angeles",
    # flex and priority have price lists of their own; Scale Tier draws on units bought ahead.
    list_price_tiers=frozenset({"default", "auto", "batch"}),
    # The web_search tool on any model, and file search (the preview search on models without reasoning
    # costs more: its answers carry their own price, Usage.web_search_kcount).
    tool_use_prices={"web_searches_kcount": Decimal(10), "storage_searches_kcount": Decimal("2.50")},
    regional_uplift=regional_uplift,
    error_envelope=is_error_envelope,
    rate_limit_headers=RATE_LIMIT_HEADERS,
    prepare_body=prepare_body,
    route_readers={
        RESPONSES: (read_response_body, ResponsesStreamReader),
        STORED_RESPONSE: (read_response_body, ResponsesStreamReader),
        REALTIME: (read_response_body, ResponsesStreamReader),
    },
)
