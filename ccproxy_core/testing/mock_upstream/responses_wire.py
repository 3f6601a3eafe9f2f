"""OpenAI's Responses API as the mock speaks it: the response object, its ``response.*`` events, stored responses.

Written from OpenAI's API reference (``POST /v1/responses``, the streaming events page and
the WebSocket-mode page): a streamed answer is ``response.created``, ``response.in_progress``,
for a reasoning model a ``reasoning`` output item (added, done), then the message item
(``response.output_item.added``, ``response.content_part.added``, one
``response.output_text.delta`` per delta, ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``) and one terminal event:
``response.completed``, ``response.incomplete`` (``max_output_tokens`` below the answer's
output tokens) or ``response.failed`` (``x-mock-stream-error-after``). Every event has a
``sequence_number`` counting from 0. Over the WebSocket the same events are text messages.

Usage: ``input_tokens`` = characters of ``instructions`` and ``input`` text // 4 (at least
1), cached as for chat completions (half, in 128-token steps, from 1024 tokens);
``output_tokens`` = 3 x deltas, plus, for reasoning models (names starting ``o`` or
``gpt-5``, or any request with a ``reasoning`` object), ``reasoning_tokens`` = half of that.
A request with ``generate: false`` (Codex CLI's WebSocket warm-up) gets a completed
response with no output and 0 output tokens.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from ccproxy_core.testing.mock_upstream.answers import (
    JSON_CONTENT_TYPE,
    SSE_CONTENT_TYPE,
    InvalidRequest,
    JsonAnswer,
    StreamAnswer,
    dump,
    json_object,
)
from ccproxy_core.testing.mock_upstream.faults import COST_RESPONSE_HEADER, RequestPlan
from ccproxy_core.testing.mock_upstream.tokens import (
    CHARACTERS_PER_TOKEN,
    OPENAI_CACHE_GRANULARITY,
    OPENAI_CACHE_MIN_PROMPT_TOKENS,
    delta_text,
    output_tokens,
    prompt_characters,
)

STORED_RESPONSES_LIMIT = 1000


def load_response_request(body: bytes) -> dict[str, Any]:
    """The ``POST /v1/responses`` body; InvalidRequest unless it has a model and an input."""
    payload = json_object(body)
    if not isinstance(payload.get("model"), str) or not payload["model"]:
        raise InvalidRequest("model: Field required (a non-empty string)", "model")
    if not isinstance(payload.get("input"), (str, list)) and payload.get("previous_response_id") is None:
        raise InvalidRequest("input: Field required (a string or a list of items)", "input")
    return payload


class ResponsesWire:
    """Builds Responses answers and keeps the last stored ones (for GET, DELETE and input items)."""

    def __init__(self) -> None:
        self.stored: OrderedDict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = OrderedDict()

    def events(self, payload: dict[str, Any], plan: RequestPlan, response_id: str) -> list[dict[str, Any]]:
        """Every event of one answer, in order, the last one terminal (without sequence numbers)."""
        built = _Answer(payload, plan, response_id)
        if payload.get("store", True) is not False:
            self._store(built.final, _input_items(payload, response_id))
        return built.events

    def json_answer(
        self, payload: dict[str, Any], plan: RequestPlan, response_id: str, headers: dict[str, str]
    ) -> JsonAnswer:
        """A non-streamed answer: the final response object."""
        final = self.events(payload, plan, response_id)[-1]["response"]
        return JsonAnswer(200, {**headers, "Content-Type": JSON_CONTENT_TYPE}, dump(final))

    def stream_answer(
        self, payload: dict[str, Any], plan: RequestPlan, response_id: str, headers: dict[str, str]
    ) -> StreamAnswer:
        """A streamed answer cut where faults act: head, one event per delta, tail."""
        events = self.events(payload, plan, response_id)
        numbered = [{**event, "sequence_number": index} for index, event in enumerate(events)]
        encoded = [f"event: {event['type']}\ndata: {dump(event).decode()}\n\n".encode() for event in numbered]
        first_delta = next(
            (i for i, e in enumerate(events) if e["type"] == "response.output_text.delta"), len(events) - 4
        )
        deltas = [
            chunk for chunk, event in zip(encoded, events, strict=True) if event["type"] == "response.output_text.delta"
        ]
        head, tail = b"".join(encoded[:first_delta]), b"".join(encoded[first_delta + len(deltas) :])
        failed = _failed_event(events[0]["response"], plan, first_delta + (plan.stream_error_after or 0))
        headers = {**headers, "Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache"}
        return StreamAnswer(headers, head, deltas, tail, failed)

    def retrieve(self, response_id: str) -> dict[str, Any] | None:
        """A stored response object, or None."""
        stored = self.stored.get(response_id)
        return stored[0] if stored else None

    def input_items(self, response_id: str) -> list[dict[str, Any]] | None:
        """The input items of a stored response, or None."""
        stored = self.stored.get(response_id)
        return stored[1] if stored else None

    def delete(self, response_id: str) -> bool:
        """Forget a stored response; False when there was none."""
        return self.stored.pop(response_id, None) is not None

    def _store(self, final: dict[str, Any], items: list[dict[str, Any]]) -> None:
        self.stored[final["id"]] = (final, items)
        while len(self.stored) > STORED_RESPONSES_LIMIT:
            self.stored.popitem(last=False)


def response_headers(request_id: str, plan: RequestPlan) -> dict[str, str]:
    """OpenAI's usual headers of a Responses answer."""
    headers = {"x-request-id": request_id, "openai-version": "2020-10-01", "openai-processing-ms": str(plan.latency_ms)}
    if plan.cost_usd is not None:
        headers[COST_RESPONSE_HEADER] = plan.cost_usd
    return headers


class _Answer:
    """One answer's numbers, its final response object and its events."""

    def __init__(self, payload: dict[str, Any], plan: RequestPlan, response_id: str) -> None:
        self.payload, self.plan, self.response_id = payload, plan, response_id
        characters = prompt_characters(payload.get("instructions")) + prompt_characters(payload.get("input"))
        self.input_tokens = max(1, characters // CHARACTERS_PER_TOKEN)
        self.cached = 0
        if self.input_tokens >= OPENAI_CACHE_MIN_PROMPT_TOKENS:
            self.cached = (self.input_tokens // 2) // OPENAI_CACHE_GRANULARITY * OPENAI_CACHE_GRANULARITY
        # ``generate: false`` (a WebSocket warm-up) prepares the context and answers nothing.
        self.generates = payload.get("generate") is not False
        delta_count = plan.delta_count if self.generates else 0
        visible = output_tokens(delta_count) if self.generates else 0
        self.reasoning = visible // 2 if _reasons(payload) else 0
        limit = payload.get("max_output_tokens")
        self.incomplete = isinstance(limit, int) and limit < visible + self.reasoning
        if self.incomplete and isinstance(limit, int):
            self.reasoning = min(self.reasoning, limit)
            delta_count = min(delta_count, max(0, limit - self.reasoning) // 3)
            visible = limit - self.reasoning
        self.output_tokens = visible + self.reasoning
        self.created_at = int(time.time())
        self.text = "".join(delta_text(index) for index in range(delta_count))
        self.message_id = "msg_" + response_id.removeprefix("resp_")
        self.reasoning_id = "rs_" + response_id.removeprefix("resp_")
        self.final = self.response(self._status(), self._output(done=True), self._usage())
        self.events = self._events(delta_count)

    def _status(self) -> str:
        return "incomplete" if self.incomplete else "completed"

    def response(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None) -> dict[str, Any]:
        payload = self.payload
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": payload.get("instructions"),
            "max_output_tokens": payload.get("max_output_tokens"),
            "model": payload["model"],
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": payload.get("previous_response_id"),
            "reasoning": {"effort": (payload.get("reasoning") or {}).get("effort"), "summary": None},
            "service_tier": self._service_tier(status),
            "store": payload.get("store", True),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": payload.get("tools") or [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": payload.get("metadata") or {},
        }

    def _service_tier(self, status: str) -> Any:
        """The request's tier while in progress ("auto" unless it asked), then the one that served it."""
        asked = self.payload.get("service_tier") or "auto"
        if status == "in_progress":
            return asked
        return self.plan.service_tier or (asked if asked in ("flex", "priority") else "default")

    def _usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning},
            "total_tokens": self.input_tokens + self.output_tokens,
        }

    def _reasoning_item(self) -> dict[str, Any]:
        return {"id": self.reasoning_id, "type": "reasoning", "summary": []}

    def _message(self, done: bool) -> dict[str, Any]:
        content = [self._part(self.text)] if done else []
        return {
            "id": self.message_id,
            "type": "message",
            "status": "completed" if done else "in_progress",
            "role": "assistant",
            "content": content,
        }

    @staticmethod
    def _part(text: str) -> dict[str, Any]:
        return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}

    def _output(self, done: bool) -> list[dict[str, Any]]:
        if not self.generates:
            return []
        return ([self._reasoning_item()] if self.reasoning else []) + [self._message(done)]

    def _events(self, delta_count: int) -> list[dict[str, Any]]:
        in_progress = self.response("in_progress", [], None)
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": in_progress},
            {"type": "response.in_progress", "response": in_progress},
        ]
        if not self.generates:
            return [*events, {"type": "response." + self._status(), "response": self.final}]
        index = 0
        if self.reasoning:
            item = self._reasoning_item()
            events += [
                {"type": "response.output_item.added", "output_index": 0, "item": item},
                {"type": "response.output_item.done", "output_index": 0, "item": item},
            ]
            index = 1
        where = {"item_id": self.message_id, "output_index": index, "content_index": 0}
        events += [
            {"type": "response.output_item.added", "output_index": index, "item": self._message(False)},
            {"type": "response.content_part.added", **where, "part": self._part("")},
        ]
        events += [
            {"type": "response.output_text.delta", **where, "delta": delta_text(i), "logprobs": []}
            for i in range(delta_count)
        ]
        events += [
            {"type": "response.output_text.done", **where, "text": self.text, "logprobs": []},
            {"type": "response.content_part.done", **where, "part": self._part(self.text)},
            {"type": "response.output_item.done", "output_index": index, "item": self._message(True)},
            {"type": "response." + self._status(), "response": self.final},
        ]
        return events


def _reasons(payload: dict[str, Any]) -> bool:
    model = payload["model"]
    return isinstance(payload.get("reasoning"), dict) or model.startswith(("o1", "o3", "o4", "gpt-5"))


def _input_items(payload: dict[str, Any], response_id: str) -> list[dict[str, Any]]:
    given = payload.get("input")
    if isinstance(given, str):
        given = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": given}]}]
    items = [item for item in given or [] if isinstance(item, dict)]
    suffix = response_id.removeprefix("resp_")
    return [{"id": f"msg_in{index}_{suffix}", **item} for index, item in enumerate(items)]


def _failed_event(in_progress: dict[str, Any], plan: RequestPlan, sequence_number: int) -> bytes:
    if plan.stream_error_after is None:
        return b""
    code = plan.error_type or "server_error"
    failed = {**in_progress, "status": "failed", "error": {"code": code, "message": f"mock upstream: injected {code}"}}
    event = {"type": "response.failed", "sequence_number": sequence_number, "response": failed}
    return f"event: response.failed\ndata: {dump(event).decode()}\n\n".encode()
