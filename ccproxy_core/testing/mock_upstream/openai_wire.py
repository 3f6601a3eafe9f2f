"""OpenAI's wire format: chat.completion JSON and chunk stream, errors and rate-limit headers."""

from __future__ import annotations

import json
import time
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
from ccproxy_core.testing.mock_upstream.ids import Sequence
from ccproxy_core.testing.mock_upstream.tokens import ANSWER_WORDS_JSON, OpenAIUsage, answer_text, openai_usage

REQUESTS_LIMIT = 10_000
TOKENS_LIMIT = 30_000_000
SYSTEM_FINGERPRINT = "fp_ccproxy_mock"

ERRORS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
"""OpenAI's (error.type, error.code) per status; a 429 really has type ``requests``."""
STREAM_ERROR_TYPE = "server_error"

_DONE = sse_event(None, "[DONE]")
_MALFORMED_CHUNK = sse_event(None, '{"id":"chatcmpl-mock","object":"chat.completion.ch')


def error_body(message: str, error_type: str, code: str | None, param: str | None = None) -> bytes:
    """OpenAI's error object."""
    return dump({"error": {"message": message, "type": error_type, "param": param, "code": code}})


def errors_for(status: int) -> tuple[str, str | None]:
    """The (type, code) OpenAI uses for ``status``."""
    if status in ERRORS:
        return ERRORS[status]
    return ("server_error", None) if status >= 500 else ("invalid_request_error", None)


class OpenAIWire:
    """Builds every OpenAI answer of one mock server (it numbers the requests it serves)."""

    def __init__(self) -> None:
        self._sequence = Sequence()

    def new_request_id(self) -> tuple[int, str]:
        """Number the next request and name it (``req_...``)."""
        number = self._sequence.next()
        return number, self._sequence.make_id("req_", number)

    def error(
        self,
        status: int,
        message: str,
        request_id: str,
        error_type: str | None = None,
        retry_after: str | None = None,
        param: str | None = None,
    ) -> JsonAnswer:
        """An error answer; ``error_type`` defaults to the one OpenAI uses for ``status``."""
        default_type, code = errors_for(status)
        headers = {"Content-Type": JSON_CONTENT_TYPE, "x-request-id": request_id}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        return JsonAnswer(status, headers, error_body(message, error_type or default_type, code, param))

    def completion(self, body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer | StreamAnswer:
        """The answer to ``POST /v1/chat/completions``: a chat.completion, or its chunk stream."""
        payload = load_payload(body)
        usage = openai_usage(payload, plan.delta_count, plan.input_tokens)
        completion_id = self._sequence.make_id("chatcmpl-", number)
        created = int(time.time())
        if payload.get("stream") is True:
            headers = self._headers(SSE_CONTENT_TYPE, request_id, number, usage, plan)
            headers["Cache-Control"] = "no-cache"
            return _stream(payload, completion_id, created, usage, plan, headers)
        headers = self._headers(JSON_CONTENT_TYPE, request_id, number, usage, plan)
        completion = _completion(payload["model"], completion_id, created, usage, answer_text(plan.delta_count), plan)
        body_bytes = dump(completion)
        if plan.malformed:
            body_bytes = body_bytes[: len(body_bytes) // 2]
        return JsonAnswer(200, headers, body_bytes)

    def _headers(
        self, content_type: str, request_id: str, number: int, usage: OpenAIUsage, plan: RequestPlan
    ) -> dict[str, str]:
        headers = {
            "Content-Type": content_type,
            "x-request-id": request_id,
            "openai-version": "2020-10-01",
            "openai-processing-ms": str(plan.latency_ms),
            "x-ratelimit-limit-requests": str(REQUESTS_LIMIT),
            "x-ratelimit-remaining-requests": str(REQUESTS_LIMIT - 1 - number % REQUESTS_LIMIT),
            "x-ratelimit-reset-requests": "6ms",
            "x-ratelimit-limit-tokens": str(TOKENS_LIMIT),
            "x-ratelimit-remaining-tokens": str(TOKENS_LIMIT - usage.total_tokens),
            "x-ratelimit-reset-tokens": "0s",
        }
        if plan.cost_usd is not None:
            headers[COST_RESPONSE_HEADER] = plan.cost_usd
        return headers


def _usage_object(usage: OpenAIUsage, plan: RequestPlan) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": min(plan.reasoning_tokens or 0, usage.completion_tokens),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _completion(
    model: str, completion_id: str, created: int, usage: OpenAIUsage, text: str, plan: RequestPlan
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": _usage_object(usage, plan),
        "service_tier": plan.service_tier or "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _wants_usage(payload: dict[str, Any]) -> bool:
    stream_options = payload.get("stream_options")
    return isinstance(stream_options, dict) and stream_options.get("include_usage") is True


def _stream(
    payload: dict[str, Any],
    completion_id: str,
    created: int,
    usage: OpenAIUsage,
    plan: RequestPlan,
    headers: dict[str, str],
) -> StreamAnswer:
    include_usage = _wants_usage(payload)
    # Every chunk shares this frame; only the choice (and the last chunk's usage) differs.
    prefix = (
        f'{{"id":"{completion_id}","object":"chat.completion.chunk","created":{created},'
        f'"model":{json.dumps(payload["model"])},"service_tier":"{plan.service_tier or "default"}",'
        f'"system_fingerprint":"{SYSTEM_FINGERPRINT}","choices":['
    )
    suffix = '],"usage":null}' if include_usage else "]}"

    def chunk(choice: str) -> bytes:
        return sse_event(None, prefix + choice + suffix)

    def delta(content: str, finish_reason: str = "null") -> str:
        return f'{{"index":0,"delta":{content},"logprobs":null,"finish_reason":{finish_reason}}}'

    head = chunk(delta('{"role":"assistant","content":"","refusal":null}'))
    word_chunks = [chunk(delta(f'{{"content":{word}}}')) for word in ANSWER_WORDS_JSON[: plan.delta_count]]
    deltas = [word_chunks[index % len(word_chunks)] for index in range(plan.delta_count)]
    if plan.malformed:
        deltas[:1] = [_MALFORMED_CHUNK]
    tail = chunk(delta("{}", '"stop"'))
    if include_usage:
        tail += sse_event(None, f'{prefix}],"usage":{dump(_usage_object(usage, plan)).decode()}}}')
    return StreamAnswer(headers, head, deltas, tail + _DONE, _error_event(plan))


def _error_event(plan: RequestPlan) -> bytes:
    if plan.stream_error_after is None:
        return b""
    error_type = plan.error_type or STREAM_ERROR_TYPE
    return sse_event(None, error_body(f"mock upstream: injected {error_type}", error_type, None).decode())
