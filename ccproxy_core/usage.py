"""Token usage, response model and provider error, read from a response as it passes through.

Two wire formats are understood, named by ``service_type``:

``"anthropic"`` (Messages API)
    ``usage.input_tokens``, ``output_tokens``, ``cache_creation_input_tokens`` (cache
    writes), ``cache_read_input_tokens``; ``usage.cache_creation.ephemeral_1h_input_tokens``
    (the part of the cache writes made with the dearer one-hour lifetime). A stream
    carries them in ``message_start`` (``message.usage``) and ``message_delta``
    (``usage``, cumulative; a later value replaces an earlier one). Errors are
    ``{"type": "error", "error": {"type", "message"}}``, in a body or an ``error`` event.

``"openai"`` (Chat Completions API)
    ``usage.prompt_tokens``, ``completion_tokens`` and
    ``prompt_tokens_details.cached_tokens``. A stream has usage only in its last chunk,
    when the client asked for ``stream_options.include_usage``. Errors are
    ``{"error": {"message", "type", "code"}}``.

Counts follow Anthropic's convention everywhere: ``input_tokens`` excludes cache reads
and writes. OpenAI counts cached tokens inside ``prompt_tokens``, so for OpenAI
``input_tokens = prompt_tokens - cached_tokens``, ``cache_read_tokens = cached_tokens``
and ``cache_write_tokens = 0`` (OpenAI neither reports nor bills cache writes).

Nothing here raises on bad input: a body that is not JSON, or JSON of an unexpected
shape, gives an empty ``Usage``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccproxy_core.sse_parser import SSELineSplitter, iter_data_fields

_MAX_ERROR_TYPE_CHARS = 64
_MAX_ERROR_MESSAGE_CHARS = 1000
# Providers echo a (partly masked) key in some auth errors; records never hold keys.
_API_KEY_PATTERN = re.compile(r"sk-[A-Za-z0-9_\-*]{3,}")


@dataclass(slots=True)
class Usage:
    """What a response said about its cost and outcome; ``None`` where it said nothing."""

    input_tokens: int | None = None
    """Input tokens not read from or written to the cache (Anthropic's convention)."""
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    response_model: str | None = None
    """The model name the provider reports having used."""
    error_type: str | None = None
    """The provider's error type from an error body or event, e.g. ``"rate_limit_error"``."""
    error_message: str | None = None
    cache_write_1h_tokens: int | None = None
    """Of ``cache_write_tokens``, those written with a one-hour lifetime (Anthropic bills
    them higher than the default five-minute writes)."""


def usage_from_json(service_type: str, body: bytes) -> Usage:
    """Read the usage, model and error of a whole (non-streaming) JSON response body."""
    usage = Usage()
    payload = _decode_json(body)
    if isinstance(payload, dict):
        _PAYLOAD_READERS.get(service_type, _ignore_payload)(usage, payload)
    return usage


def request_model_and_stream(body: bytes) -> tuple[str | None, bool]:
    """The ``model`` and ``stream`` fields of a request body; ``(None, False)`` if not JSON.

    The whole body is decoded: a key named ``model`` or ``stream`` may also occur deep
    inside a request (in a tool's input), so only the top level can be trusted, and
    ``json.loads`` is the fastest exact way to reach it.
    """
    return model_and_stream(request_payload(body))


def request_payload(body: bytes) -> dict[str, Any] | None:
    """The request body decoded once, when it is a JSON object; other readers (attribution) share it."""
    payload = _decode_json(body) if body else None
    return payload if isinstance(payload, dict) else None


def model_and_stream(payload: dict[str, Any] | None) -> tuple[str | None, bool]:
    """The ``model`` and ``stream`` fields of a decoded request body (see :func:`request_model_and_stream`)."""
    if payload is None:
        return None, False
    model = payload.get("model")
    return (model if isinstance(model, str) and model else None), payload.get("stream") is True


class StreamUsageParser:
    """Reads usage from an SSE response stream while the stream passes through.

    Feed it every chunk, in order; ask for ``result()`` at any time, including after a
    stream that was cut off. It keeps only the unfinished last line, and JSON-decodes
    only the events that can carry usage, the model or an error (Anthropic:
    ``message_start``, ``message_delta``, ``error``; OpenAI: the first chunk, chunks with
    a non-null ``usage``, and errors). Content deltas are skipped after a byte search.
    """

    __slots__ = ("_usage", "_lines", "_reader")

    def __init__(self, service_type: str) -> None:
        self._usage = Usage()
        self._lines = SSELineSplitter()
        reader_class = _STREAM_READERS.get(service_type, _StreamReader)
        self._reader: _StreamReader = reader_class()

    def feed(self, chunk: bytes) -> None:
        """Take the next chunk of the stream, exactly as it came from the provider."""
        block = self._lines.feed(chunk)
        if block:
            self._reader.read_block(self._usage, block)

    def result(self) -> Usage:
        """The usage seen so far, as a new ``Usage`` the parser will not change later."""
        usage = copy.copy(self._usage)
        tail = self._lines.tail
        if tail:
            # A stream cut right after its last line but before the line end. Read it
            # with a copy of the reader, so feeding may go on as if unasked.
            copy.copy(self._reader).read_block(usage, tail)
        return usage


class _StreamReader:
    """Reads the lines of one stream that matter into a ``Usage``; subclassed per provider."""

    __slots__ = ()

    def read_block(self, usage: Usage, block: bytes) -> None:
        """Read a block of complete lines (an unknown service type has nothing to read)."""


# --- Anthropic -------------------------------------------------------------------------

_ANTHROPIC_EVENT_MARKER = re.compile(rb'"(?:message_start|message_delta|error)"')


class _AnthropicStreamReader(_StreamReader):
    __slots__ = ()

    def read_block(self, usage: Usage, block: bytes) -> None:
        if _ANTHROPIC_EVENT_MARKER.search(block) is None:
            return
        for data in iter_data_fields(block):
            if _ANTHROPIC_EVENT_MARKER.search(data) is not None:
                event = _decode_json(data)
                if isinstance(event, dict):
                    _read_anthropic_event(usage, event)


def _read_anthropic_event(usage: Usage, event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "message_start":
        message = event.get("message")
        if isinstance(message, dict):
            _read_anthropic_payload(usage, message)
    elif kind == "message_delta":
        _read_anthropic_usage(usage, event.get("usage"))
    else:
        _read_error(usage, event.get("error"))


def _read_anthropic_payload(usage: Usage, payload: dict[str, Any]) -> None:
    """A whole response body, or the ``message`` of a ``message_start`` event."""
    _read_model(usage, payload.get("model"))
    _read_anthropic_usage(usage, payload.get("usage"))
    _read_error(usage, payload.get("error"))


def _read_anthropic_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    for field_name, key in _ANTHROPIC_USAGE_KEYS:
        count = _token_count(raw.get(key))
        if count is not None:
            setattr(usage, field_name, count)
    cache_creation = raw.get("cache_creation")
    if isinstance(cache_creation, dict):
        one_hour = _token_count(cache_creation.get("ephemeral_1h_input_tokens"))
        if one_hour is not None:
            usage.cache_write_1h_tokens = one_hour


_ANTHROPIC_USAGE_KEYS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_write_tokens", "cache_creation_input_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
)


# --- OpenAI ----------------------------------------------------------------------------

# Every chunk of a stream with include_usage has "usage": null; only a real object counts.
_OPENAI_USAGE_MARKER = re.compile(rb'"usage"\s*:\s*\{')
_ERROR_MARKER = b'"error"'


class _OpenAIStreamReader(_StreamReader):
    """Decodes the first JSON chunk (for the model), then only usage and error chunks."""

    __slots__ = ("_first_chunk_pending",)

    def __init__(self) -> None:
        self._first_chunk_pending = True

    def read_block(self, usage: Usage, block: bytes) -> None:
        if not (self._first_chunk_pending or _is_openai_chunk_of_interest(block)):
            return
        for data in iter_data_fields(block):
            if self._first_chunk_pending or _is_openai_chunk_of_interest(data):
                chunk = _decode_json(data)
                if isinstance(chunk, dict):
                    self._first_chunk_pending = False
                    _read_openai_payload(usage, chunk)


def _is_openai_chunk_of_interest(data: bytes) -> bool:
    return _ERROR_MARKER in data or _OPENAI_USAGE_MARKER.search(data) is not None


def _read_openai_payload(usage: Usage, payload: dict[str, Any]) -> None:
    """A whole response body or one stream chunk: the two have the same fields."""
    _read_model(usage, payload.get("model"))
    _read_openai_usage(usage, payload.get("usage"))
    _read_error(usage, payload.get("error"))


def _read_openai_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    prompt = _token_count(raw.get("prompt_tokens"))
    completion = _token_count(raw.get("completion_tokens"))
    details = raw.get("prompt_tokens_details")
    cached = _token_count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if prompt is not None:
        cached_in_prompt = min(cached or 0, prompt)
        usage.input_tokens = prompt - cached_in_prompt
        usage.cache_read_tokens = cached_in_prompt
        usage.cache_write_tokens = 0
    elif cached is not None:
        usage.cache_read_tokens = cached
    if completion is not None:
        usage.output_tokens = completion


# --- Shared ----------------------------------------------------------------------------


def _read_model(usage: Usage, model: Any) -> None:
    if isinstance(model, str) and model:
        usage.response_model = model


def _read_error(usage: Usage, error: Any) -> None:
    """An error object: Anthropic's ``{"type", "message"}`` or OpenAI's ``{"type", "code", "message"}``."""
    if not isinstance(error, dict):
        return
    kind = error.get("type")
    if not (isinstance(kind, str) and kind):
        kind = error.get("code")
    if isinstance(kind, str) and kind:
        usage.error_type = kind[:_MAX_ERROR_TYPE_CHARS]
    message = error.get("message")
    if isinstance(message, str):
        usage.error_message = _API_KEY_PATTERN.sub("sk-***", message[:_MAX_ERROR_MESSAGE_CHARS])


def _token_count(value: Any) -> int | None:
    # bool is an int subclass; a negative count is nonsense that would break pricing.
    if type(value) is int and value >= 0:
        return value
    return None


def _decode_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        # ValueError covers bad JSON and bad UTF-8; RecursionError, absurdly deep nesting.
        return None


def _ignore_payload(usage: Usage, payload: dict[str, Any]) -> None:
    """Unknown service type: nothing can be read."""


_PAYLOAD_READERS: dict[str, Callable[[Usage, dict[str, Any]], None]] = {
    "anthropic": _read_anthropic_payload,
    "openai": _read_openai_payload,
}
_STREAM_READERS: dict[str, type[_StreamReader]] = {
    "anthropic": _AnthropicStreamReader,
    "openai": _OpenAIStreamReader,
}
