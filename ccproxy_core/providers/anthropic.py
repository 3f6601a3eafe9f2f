"""Anthropic's Messages API: routes, headers, error shapes, and the usage and stream readers.

Usage (a whole body's ``usage``, a stream's ``message_start.message.usage`` and
``message_delta.usage``, cumulative: a later value replaces an earlier one):
``input_tokens``, ``output_tokens`` (thinking included), ``cache_creation_input_tokens``
(cache writes), ``cache_read_input_tokens``, ``cache_creation.ephemeral_1h_input_tokens``
(the part of the writes made with the dearer one-hour lifetime),
``server_tool_use.web_search_requests`` (billed per search), ``service_tier``
(``standard``, ``priority``, ``batch``), ``speed`` (``fast`` for fast mode), ``inference_geo``
(``us``: US-only inference, 1.1 times every token price) and, with compaction, ``iterations``
(one usage per sampling step; the top-level counts leave the summary step out, the bill is
the sum of all, each step at the rates its own input selects).
Errors are ``{"type": "error", "error": {"type", "message"}}``, in a body or an
``event: error`` sent after HTTP 200. A whole stream ends with ``message_stop``; the first
content token is the first ``content_block_delta`` (text, thinking or tool input).

The legacy Text Completions API (``/v1/complete``) answers ``{"type": "completion", "completion",
"stop_reason", "model"}`` and reports no usage. Its stream is ``completion`` events (and
``ping``), the last with a non-null ``stop_reason`` and no ``message_stop`` after it; its error
event is ``event: error`` with ``{"error": {"type", "message"}}`` (no top-level ``type``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.sse_parser import iter_data_fields, search_data_lines, through_event
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.json_text import decode_json, too_costly_to_decode
from ccproxy_core.providers.anthropic_events import event_data, stop_end
from ccproxy_core.providers.anthropic_prices import price_context, price_multiplier
from ccproxy_core.providers.anthropic_steps import one_hour_writes_of, settle_one_hour_writes
from ccproxy_core.providers.base import (
    Provider,
    StreamReader,
    StreamState,
    billed_count,
    decode_event,
    read_error,
    read_label,
    read_model,
    routes,
    spells_with_escapes,
    token_count,
)

NAME = "anthropic"
TEXT_COMPLETIONS = "text_completions"
"""The route reader of the legacy Text Completions API, whose stream ends otherwise."""

ROUTES = (
    *routes(NAME, "usage", "POST /v1/messages"),
    *routes(NAME, TEXT_COMPLETIONS, "POST /v1/complete"),
    *routes(NAME, "free", "POST /v1/messages/count_tokens"),  # documented free to use
    *routes(
        NAME,
        "none",
        "POST /v1/messages/batches",
        "GET /v1/messages/batches",
        "GET /v1/messages/batches/{batch_id}",
        "DELETE /v1/messages/batches/{batch_id}",
        "POST /v1/messages/batches/{batch_id}/cancel",
    ),
    *routes(NAME, "batch_results", "GET /v1/messages/batches/{batch_id}/results"),
    # Claude Code's warm-up and connectivity check (HEAD, under its base URL): the provider answers it.
    *routes(NAME, "free", "GET /api/hello"),
)

LOCAL_ERROR_TYPES = {
    502: "api_error",
    504: "timeout_error",
    413: "request_too_large",
    404: "not_found_error",
    429: "rate_limit_error",
}  # 429: a plugin (a spending budget) refused the request

_RESOURCES = ("requests", "tokens", "input-tokens", "output-tokens")
RATE_LIMIT_HEADERS = {
    f"anthropic-ratelimit-{resource}-{kind}": f"{resource.replace('-', '_')}_{kind}"
    for resource in _RESOURCES
    for kind in ("limit", "remaining")
} | {"retry-after": "retry_after_seconds"}

_USAGE_KEYS = (
    ("input_tokens", "input_tokens"),
    ("output_tokens", "output_tokens"),
    ("cache_write_tokens", "cache_creation_input_tokens"),
    ("cache_read_tokens", "cache_read_input_tokens"),
)
MAX_ITERATIONS = 64
"""More sampling steps than this in one answer leave it unpriced."""
_EVENTS_WITH_DATA = re.compile(rb'"(?:message_start|message_delta|error)"')
# Named so by its ``event:`` line, an event is read even when its data is not JSON enough to show its type.
_NAMED_EVENT_WITH_DATA = re.compile(rb"(?m)^event: ?(?:message_start|message_delta|error)\r?$")
_DELTA = b'"content_block_delta"'
# The first token is a delta with content: a tool's input often starts with ``"partial_json": ""``.
_FIRST_CONTENT = re.compile(rb'"(?:text|partial_json|thinking)"\s*:\s*"[^"]')
# Text Completions: the last event has a string stop_reason (null before it); text is "completion".
_COMPLETION_OF_INTEREST = re.compile(rb'"stop_reason"\s*:\s*"|"error"\s*:\s*\{')
_FIRST_COMPLETION_TEXT = re.compile(rb'"completion"\s*:\s*"[^"]')


def error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    """Anthropic's error object, so SDKs raise their usual exceptions (its ``request_id`` is ccproxy's)."""
    return json.dumps(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    ).encode()


def read_payload(usage: Usage, payload: dict[str, Any]) -> None:
    """A whole response body, or the ``message`` of a ``message_start`` event."""
    read_model(usage, payload.get("model"))
    read_usage(usage, payload.get("usage"))
    usage.finish_reason = read_label(payload.get("stop_reason")) or usage.finish_reason
    kind = payload.get("type")
    if kind == "error" or (kind is None and "error" in payload):  # a gateway's error body may lack the type
        read_error(usage, payload.get("error"))


def read_body(usage: Usage, payload: dict[str, Any]) -> None:
    """A whole response body: a message always reports its output tokens; without them its bill is unknown."""
    read_payload(usage, payload)
    raw = payload.get("usage")
    if payload.get("type") == "message" and isinstance(raw, dict) and raw.get("output_tokens") is None:
        usage.bad_counts = True


def _split_total(usage: Usage, split: dict[str, Any]) -> int | None:
    """The cache writes a ``cache_creation`` split adds up to, when it gives any."""
    parts = [billed_count(usage, split.get(key)) for key in ("ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens")]
    return None if parts == [None, None] else sum(part or 0 for part in parts)


def read_usage(usage: Usage, raw: Any) -> None:
    if not isinstance(raw, dict):
        return
    _read_token_counts(usage, raw)
    server_tools = raw.get("server_tool_use")
    if isinstance(server_tools, dict):
        searches = token_count(server_tools.get("web_search_requests"))
        if searches is not None:
            usage.web_search_requests = searches
    usage.service_tier = read_label(raw.get("service_tier")) or usage.service_tier
    usage.speed = read_label(raw.get("speed")) or usage.speed
    usage.inference_geo = read_label(raw.get("inference_geo")) or usage.inference_geo
    details = raw.get("output_tokens_details")
    thinking = token_count(details.get("thinking_tokens")) if isinstance(details, dict) else None
    if thinking is not None:  # part of output_tokens, billed as output
        usage.reasoning_tokens = thinking
    _read_iterations(usage, raw.get("iterations"))


def _read_token_counts(usage: Usage, raw: dict[str, Any]) -> None:
    # A count the provider sends replaces the one before (message_start's placeholder), even when it is no
    # count (-500): then it is unknown, never the earlier figure. A count it leaves out keeps the earlier one.
    for field_name, key in _USAGE_KEYS:
        value = raw.get(key)
        if value is not None:
            setattr(usage, field_name, billed_count(usage, value))
    cache_creation = raw.get("cache_creation")
    if isinstance(cache_creation, dict):
        one_hour = cache_creation.get("ephemeral_1h_input_tokens")
        if one_hour is not None:
            usage.cache_write_1h_tokens = billed_count(usage, one_hour)
        if usage.cache_write_tokens is None and _split_total(usage, cache_creation):
            usage.bad_counts = True  # writes split without their total (never seen): which count is wrong?


def _read_iterations(usage: Usage, iterations: Any) -> None:
    """Compaction and the advisor tool: the top-level counts leave out the summarising step and the
    advisor's; the bill is the sum of every step, each at its own model's rates when it names one
    (an ``advisor_message`` or ``fallback_message`` step).

    Each usage replaces the one before (a stream's ``message_delta`` after ``message_start``), its
    steps too. Steps that cannot all be read leave the cost unknown: the top-level counts alone
    are known to be short of the bill.
    """
    usage.steps = None
    if iterations is None or iterations == []:
        return
    if not isinstance(iterations, list) or len(iterations) > MAX_ITERATIONS:
        usage.bad_counts = True
        return
    steps = []
    for raw in iterations:
        step = Usage()
        if isinstance(raw, dict):
            _read_token_counts(step, raw)
            read_model(step, raw.get("model"))
        if step.bad_counts or not step.has_tokens:
            usage.bad_counts = True
            return
        steps.append(step)
    if not settle_one_hour_writes(steps, usage.cache_write_1h_tokens):  # the answer's split, for steps without
        usage.bad_counts = True
        return
    for field_name, _ in _USAGE_KEYS:
        setattr(usage, field_name, sum(getattr(step, field_name) or 0 for step in steps))
    usage.cache_write_1h_tokens = one_hour_writes_of(steps)
    usage.steps = tuple(steps)


class AnthropicStreamReader(StreamReader):
    __slots__ = ("_output_counted", "_started")

    skipped_names = frozenset((None, b"ping", b"error"))  # skipped, or raised on by the name alone
    sdk_skips_empty_data, sdk_stops_at_done = True, False

    def __init__(self) -> None:
        self._output_counted = False
        """A ``message_delta`` gave the output count: ``message_start``'s is a placeholder (1)."""
        self._started = False
        """A ``message_start`` was read: the SDKs ignore any later one (its counts are placeholders)."""

    def read_block(self, usage: Usage, state: StreamState, block: bytes) -> None:
        if state.ended:
            _read_error_after_end(usage, state, block)
            return
        if not state.first_token_seen and _DELTA in block and _first_content(block):
            state.first_token_seen = True
        after = None
        if b"message_stop" in block and (stop := stop_end(block)) is not None:
            state.terminal_seen = True
            whole, block = block, through_event(block, stop)  # the message's last event: only an error after it
            after = whole[len(block) :]
        named = (b"message_" in block or b"error" in block) and _NAMED_EVENT_WITH_DATA.search(block) is not None
        if named or _EVENTS_WITH_DATA.search(block) is not None or spells_with_escapes(block):
            self._read_events(usage, state, block)
        if state.terminal_seen and not self._output_counted:
            _output_unknown(usage)  # a message, or an error, that never told its output count
        if after is not None and not state.over:  # no error came before the stop
            state.ended = True
            _read_error_after_end(usage, state, after)

    def read_end(self, usage: Usage, state: StreamState) -> None:
        if not self._output_counted:  # cut short before any message_delta: what was made, and billed, is unknown
            _output_unknown(usage)

    def _read_events(self, usage: Usage, state: StreamState, block: bytes) -> None:
        for name, data in event_data(block):
            if name == b"error":  # the SDKs raise on the event's name, whatever its data says
                _read_error_event(usage, state, data)
            elif name is None:  # the SDKs skip an unnamed event
                continue
            elif name in _USAGE_EVENT_NAMES or (name != b"ping" and _names_a_usage_type(data)):
                # The SDKs hand a named event's data on and go by its type, whatever the name (ping aside).
                event = decode_event(usage, state, data)
                if isinstance(event, dict):
                    kind = event.get("type")
                    self._read(usage, state, event, name.decode() if kind is None and name else kind)
            if state.error_seen:  # the SDKs raise on it: nothing after it reaches the client
                break

    def _read(self, usage: Usage, state: StreamState, event: dict[str, Any], kind: Any) -> None:
        if kind == "message_start":
            if self._started:
                return
            self._started = True
        if kind == "message_delta":
            raw = event.get("usage")
            if isinstance(raw, dict) and raw.get("output_tokens") is not None:
                self._output_counted = True
            elif not self._output_counted:  # counts are cumulative: a later delta without one keeps it
                _output_unknown(usage)
        _read_event(usage, event, kind)


def _output_unknown(usage: Usage) -> None:
    """message_start's output count is a placeholder: the count and the bill are unknown."""
    usage.bad_counts = True
    usage.output_tokens = None


def _first_content(block: bytes) -> bool:
    """A content delta with content: only a ``content_block_delta`` line counts, not a tool result's text
    sent in the same read, and only in an event the SDKs hand on (not unnamed, nor a ``ping``)."""
    return any(
        name not in AnthropicStreamReader.skipped_names and _DELTA in data and _FIRST_CONTENT.search(data)
        for name, data in event_data(block)
    )


_USAGE_EVENT_NAMES = frozenset({b"message_start", b"message_delta"})
_USAGE_TYPES = re.compile(rb'"(?:message_start|message_delta)"')


def _names_a_usage_type(data: bytes) -> bool:
    """Whether an event's data may say it is a ``message_start`` or ``message_delta``, its type spelt with
    JSON escapes or not."""
    return _USAGE_TYPES.search(data) is not None or spells_with_escapes(data)


_ERROR_DATA_BYTES = 4096


def _read_event(usage: Usage, event: dict[str, Any], kind: Any) -> None:
    """The usage (and stop reason) a ``message_start`` or ``message_delta`` brings. An error's data under
    another event's name is no error: the SDKs raise on the name ``error`` alone."""
    if kind == "message_start":
        message = event.get("message")
        if isinstance(message, dict):
            read_payload(usage, message)
    elif kind == "message_delta":
        raw = event.get("usage")
        read_usage(usage, raw)
        delta = event.get("delta")
        if isinstance(delta, dict):
            usage.finish_reason = read_label(delta.get("stop_reason")) or usage.finish_reason


def _read_error_after_end(usage: Usage, state: StreamState, block: bytes) -> None:
    """An ``error`` event after the message's end: the SDKs raise on it, so the answer failed, though whole
    (its usage stays counted: the provider made the message and bills it)."""
    if b"error" in block:
        name, data = next(((name, data) for name, data in event_data(block) if name == b"error"), (None, b""))
        if name is not None:
            _read_error_event(usage, state, data)


def _read_error_event(usage: Usage, state: StreamState, data: bytes) -> None:
    """An ``event: error``: its error object, or whatever its data says (a string, an object without ``type``)."""
    state.error_seen = state.terminal_seen = state.over = True
    event = None if too_costly_to_decode(data) else decode_json(data)
    read_error(usage, event.get("error", event) if isinstance(event, dict) else event)
    if usage.error_type is None:
        usage.error_type = "stream_error"
    if usage.error_message is None:  # the message is cut to a thousand characters: so much text is enough
        text = data.strip()[:_ERROR_DATA_BYTES].decode("utf-8", "replace")
        read_error(usage, text or "the provider sent an error event without a message")


class TextCompletionsStreamReader(StreamReader):
    """A legacy Text Completions stream: decodes the first event (for the model), then only the
    last one (a ``stop_reason``) and error events, never every piece of text."""

    __slots__ = ("_first_event_pending",)

    skipped_names = AnthropicStreamReader.skipped_names  # the same SDK reads both
    sdk_skips_empty_data, sdk_stops_at_done = True, False

    def __init__(self) -> None:
        self._first_event_pending = True

    def read_block(self, usage: Usage, state: StreamState, block: bytes) -> None:
        if not state.first_token_seen and search_data_lines(_FIRST_COMPLETION_TEXT, block):
            state.first_token_seen = True
        if not (self._first_event_pending or _COMPLETION_OF_INTEREST.search(block)):
            return
        for data in iter_data_fields(block):
            if not (self._first_event_pending or _COMPLETION_OF_INTEREST.search(data)):
                continue
            event = decode_event(usage, state, data)
            if not isinstance(event, dict):
                continue
            kind = event.get("type")
            if kind in (None, "error") and isinstance(event.get("error"), dict):
                # An error event ends the stream: a client that hangs up now had the whole answer.
                state.error_seen = state.terminal_seen = True
                read_error(usage, event.get("error"))
            elif kind == "completion":
                self._first_event_pending = False
                read_model(usage, event.get("model"))
                if isinstance(event.get("stop_reason"), str):
                    state.terminal_seen = True
                    usage.finish_reason = read_label(event["stop_reason"])


def claims_request(headers: Mapping[str, str]) -> bool:
    """Anthropic clients always send ``anthropic-version`` (or at least ``x-api-key``)."""
    return "anthropic-version" in headers or "x-api-key" in headers


PROVIDER = Provider(
    name=NAME,
    price_id="anthropic",
    default_base_url="https://api.anthropic.com",
    key_header="x-api-key",
    key_value=lambda key: key,
    request_id_header="request-id",
    routes=ROUTES,
    local_error_types=LOCAL_ERROR_TYPES,
    error_body=error_body,
    read_payload=read_body,
    stream_reader=AnthropicStreamReader,
    price_context=price_context,
    list_price_tiers=frozenset({"standard", "batch"}),  # Priority Tier draws on capacity committed ahead
    tool_use_prices={"web_searches_kcount": Decimal(10)},  # $10 per 1,000 searches, on every model
    price_multiplier=price_multiplier,
    error_envelope=lambda payload: payload.get("type") == "error",
    rate_limit_headers=RATE_LIMIT_HEADERS,
    claims_request=claims_request,
    route_readers={TEXT_COMPLETIONS: (read_payload, TextCompletionsStreamReader)},
)
