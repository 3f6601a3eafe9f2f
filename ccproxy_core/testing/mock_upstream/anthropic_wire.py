"""Anthropic's wire format: Messages JSON and SSE, count_tokens, errors and rate-limit headers."""

from __future__ import annotations

from typing import Any

from ccproxy_core.testing.mock_upstream.answers import (
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    JsonAnswer,
    StreamAnswer,
    dump,
    load_payload,
    sse_event,
)
from ccproxy_core.testing.mock_upstream.faults import COST_RESPONSE_HEADER, RequestPlan
from ccproxy_core.testing.mock_upstream.ids import ResetClock, Sequence
from ccproxy_core.testing.mock_upstream.tokens import (
    ANSWER_WORDS,
    AnthropicUsage,
    answer_text,
    anthropic_usage,
    prompt_tokens,
)

REQUESTS_LIMIT = 4_000
INPUT_TOKENS_LIMIT = 2_000_000
OUTPUT_TOKENS_LIMIT = 400_000
TOKENS_LIMIT = INPUT_TOKENS_LIMIT + OUTPUT_TOKENS_LIMIT

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
STREAM_ERROR_TYPE = "overloaded_error"

_CONTENT_BLOCK_START = sse_event(
    "content_block_start", '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}'
)
_PING = sse_event("ping", '{"type":"ping"}')
_CONTENT_BLOCK_STOP = sse_event("content_block_stop", '{"type":"content_block_stop","index":0}')
_MESSAGE_STOP = sse_event("message_stop", '{"type":"message_stop"}')
_DELTA_EVENTS = tuple(
    sse_event(
        "content_block_delta",
        dump({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}}).decode(),
    )
    for word in ANSWER_WORDS
)
_MALFORMED_DELTA = sse_event("content_block_delta", '{"type":"content_block_delta","index":0,"delta":{"type":"text_del')


def error_type_for(status: int) -> str:
    """The error type Anthropic uses for ``status``."""
    return ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_body(error_type: str, message: str, request_id: str) -> bytes:
    """Anthropic's error object."""
    return dump({"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id})


class AnthropicWire:
    """Builds every Anthropic answer of one mock server (it numbers the requests it serves)."""

    def __init__(self) -> None:
        self._sequence = Sequence()
        self._reset_clock = ResetClock(60)

    def new_request_id(self) -> tuple[int, str]:
        """Number the next request and name it (``req_...``)."""
        number = self._sequence.next()
        return number, self._sequence.make_id("req_01", number)

    def error(
        self,
        status: int,
        message: str,
        request_id: str,
        error_type: str | None = None,
        retry_after: str | None = None,
        param: str | None = None,
    ) -> JsonAnswer:
        """An error answer; ``error_type`` defaults to the one Anthropic uses for ``status``.

        Anthropic names a bad field in the message only, so ``param`` is not sent.
        """
        headers = {"Content-Type": JSON_CONTENT_TYPE, "request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        return JsonAnswer(status, headers, error_body(error_type or error_type_for(status), message, request_id))

    def count_tokens(self, body: bytes, request_id: str) -> JsonAnswer:
        """``{"input_tokens": n}``: the whole prompt, as if nothing were cached."""
        payload = load_payload(body)
        headers = {"Content-Type": JSON_CONTENT_TYPE, "request-id": request_id}
        return JsonAnswer(200, headers, dump({"input_tokens": prompt_tokens(payload)}))

    def completion(self, body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer | StreamAnswer:
        """The answer to ``POST /v1/messages``: a Message, or its event stream when ``stream`` is true."""
        payload = load_payload(body)
        usage = anthropic_usage(payload, body, plan.delta_count, plan.input_tokens)
        message_id = self._sequence.make_id("msg_01", number)
        if payload.get("stream") is True:
            headers = self._headers(SSE_CONTENT_TYPE, request_id, number, usage, plan)
            headers["Cache-Control"] = "no-cache"
            return _stream(payload["model"], message_id, usage, plan, headers, request_id)
        headers = self._headers(JSON_CONTENT_TYPE, request_id, number, usage, plan)
        body_bytes = dump(_message(payload["model"], message_id, usage, answer_text(plan.delta_count), plan))
        if plan.malformed:
            body_bytes = body_bytes[: len(body_bytes) // 2]
        return JsonAnswer(200, headers, body_bytes)

    def _headers(
        self, content_type: str, request_id: str, number: int, usage: AnthropicUsage, plan: RequestPlan
    ) -> dict[str, str]:
        # Cache reads do not count against the input-token limit, as on the real API.
        input_used = usage.input_tokens + usage.cache_creation_input_tokens
        reset = self._reset_clock.stamp()
        headers = {
            "Content-Type": content_type,
            "request-id": request_id,
            "anthropic-ratelimit-requests-limit": str(REQUESTS_LIMIT),
            "anthropic-ratelimit-requests-remaining": str(REQUESTS_LIMIT - 1 - number % REQUESTS_LIMIT),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": str(TOKENS_LIMIT),
            "anthropic-ratelimit-tokens-remaining": str(TOKENS_LIMIT - input_used - usage.output_tokens),
            "anthropic-ratelimit-tokens-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": str(INPUT_TOKENS_LIMIT),
            "anthropic-ratelimit-input-tokens-remaining": str(INPUT_TOKENS_LIMIT - input_used),
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": str(OUTPUT_TOKENS_LIMIT),
            "anthropic-ratelimit-output-tokens-remaining": str(OUTPUT_TOKENS_LIMIT - usage.output_tokens),
            "anthropic-ratelimit-output-tokens-reset": reset,
        }
        if plan.cost_usd is not None:
            headers[COST_RESPONSE_HEADER] = plan.cost_usd
        return headers


def _usage_object(usage: AnthropicUsage, output_tokens: int, plan: RequestPlan, final: bool = True) -> dict[str, Any]:
    """The ``usage`` object; web searches are counted in the final one (a stream's ``message_delta``)."""
    extra: dict[str, Any] = {}
    if plan.web_searches is not None:
        extra["server_tool_use"] = {"web_search_requests": plan.web_searches if final else 0}
    if plan.speed is not None:
        extra["speed"] = plan.speed
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": plan.service_tier or "standard",
        **extra,
    }


def _message(model: str, message_id: str, usage: AnthropicUsage, text: str, plan: RequestPlan) -> dict[str, Any]:
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": _usage_object(usage, usage.output_tokens, plan),
    }


def _stream(
    model: str, message_id: str, usage: AnthropicUsage, plan: RequestPlan, headers: dict[str, str], request_id: str
) -> StreamAnswer:
    start = _message(model, message_id, usage, "", plan)
    start.update(content=[], stop_reason=None, usage=_usage_object(usage, 1, plan, final=False))
    head = sse_event("message_start", dump({"type": "message_start", "message": start}).decode())
    deltas = [_DELTA_EVENTS[index % len(_DELTA_EVENTS)] for index in range(plan.delta_count)]
    if plan.malformed:
        deltas[:1] = [_MALFORMED_DELTA]
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": _delta_usage(usage, plan),
    }
    tail = _CONTENT_BLOCK_STOP + sse_event("message_delta", dump(message_delta).decode()) + _MESSAGE_STOP
    return StreamAnswer(headers, head + _CONTENT_BLOCK_START + _PING, deltas, tail, _error_event(plan, request_id))


def _delta_usage(usage: AnthropicUsage, plan: RequestPlan) -> dict[str, Any]:
    """A ``message_delta`` usage: the final output tokens, and the final server tool use."""
    delta: dict[str, Any] = {"output_tokens": usage.output_tokens}
    if plan.web_searches is not None:
        delta["server_tool_use"] = {"web_search_requests": plan.web_searches}
    return delta


def _error_event(plan: RequestPlan, request_id: str) -> bytes:
    if plan.stream_error_after is None:
        return b""
    error_type = plan.error_type or STREAM_ERROR_TYPE
    message = "Overloaded" if error_type == STREAM_ERROR_TYPE else f"mock upstream: injected {error_type}"
    return sse_event("error", error_body(error_type, message, request_id).decode())
