"""The mock's routes: each records the request, applies its ``x-mock-*`` plan and answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from ccproxy_core.testing.mock_upstream import models
from ccproxy_core.testing.mock_upstream.answers import JSON_CONTENT_TYPE, InvalidRequest, JsonAnswer, StreamAnswer, dump
from ccproxy_core.testing.mock_upstream.anthropic_wire import AnthropicWire
from ccproxy_core.testing.mock_upstream.delivery import deliver
from ccproxy_core.testing.mock_upstream.faults import BadMockHeader, RequestPlan, plan_request
from ccproxy_core.testing.mock_upstream.openai_wire import OpenAIWire
from ccproxy_core.testing.mock_upstream.options import MockOptions
from ccproxy_core.testing.mock_upstream.recorder import AnswerStats, RequestRecorder

Wire = AnthropicWire | OpenAIWire
BuildAnswer = Callable[[bytes, RequestPlan, int, str], JsonAnswer | StreamAnswer]


@dataclass(frozen=True, slots=True)
class MockState:
    """Everything one mock server keeps between requests (on ``app[MOCK_STATE]``)."""

    options: MockOptions
    default_plan: RequestPlan
    anthropic: AnthropicWire
    openai: OpenAIWire
    recorder: RequestRecorder
    stats: AnswerStats


MOCK_STATE = web.AppKey("ccproxy_mock_state", MockState)


async def anthropic_messages(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages``."""
    state = request.app[MOCK_STATE]
    return await _answer(request, state, state.anthropic, state.anthropic.completion)


async def anthropic_count_tokens(request: web.Request) -> web.StreamResponse:
    """``POST /v1/messages/count_tokens``."""
    state = request.app[MOCK_STATE]

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        return state.anthropic.count_tokens(body, request_id)

    return await _answer(request, state, state.anthropic, build)


async def openai_chat_completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/chat/completions``."""
    state = request.app[MOCK_STATE]
    return await _answer(request, state, state.openai, state.openai.completion)


async def list_models(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models``: Anthropic's shape when the request has ``anthropic-version``, else OpenAI's."""
    state = request.app[MOCK_STATE]
    wire = _wire_for(request, state)
    model_list = models.ANTHROPIC_MODEL_LIST if wire is state.anthropic else models.OPENAI_MODEL_LIST
    return await _answer(request, state, wire, lambda *_: _json(200, model_list))


async def get_model(request: web.Request) -> web.StreamResponse:
    """``GET /v1/models/{model_id}``: one model, or the provider's 404."""
    state = request.app[MOCK_STATE]
    wire = _wire_for(request, state)
    model_id = request.match_info["model_id"]
    found = models.anthropic_model(model_id) if wire is state.anthropic else models.openai_model(model_id)

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        if found is None:
            return wire.error(404, f"model: {model_id} was not found", request_id)
        return _json(200, found)

    return await _answer(request, state, wire, build)


async def not_found(request: web.Request) -> web.StreamResponse:
    """Any other path: the provider's 404 (Anthropic's when the request has ``anthropic-version``)."""
    state = request.app[MOCK_STATE]
    wire = _wire_for(request, state)
    message = f"mock upstream has no route {request.method} {request.path}"

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        return wire.error(404, message, request_id)

    return await _answer(request, state, wire, build)


async def _answer(request: web.Request, state: MockState, wire: Wire, build: BuildAnswer) -> web.StreamResponse:
    stats = state.stats
    stats.in_progress += 1
    try:
        response = await _respond(request, state, wire, build)
    except (ConnectionResetError, asyncio.CancelledError) as error:
        # The client left mid-answer (as a proxy does when its own client disconnects):
        # an ordinary event for a mock, counted rather than logged.
        stats.client_disconnects += 1
        if isinstance(error, asyncio.CancelledError):
            raise
        return web.Response(status=499)  # never sent: aiohttp drops it for the closed connection
    finally:
        stats.in_progress -= 1
    stats.completed += 1
    return response


async def _respond(request: web.Request, state: MockState, wire: Wire, build: BuildAnswer) -> web.StreamResponse:
    number, request_id = wire.new_request_id()
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return await deliver(request, wire.error(413, "request body is too large", request_id), state.default_plan)
    except web.RequestPayloadError:  # a body its Content-Encoding does not decode
        message = f"request body is not valid {request.headers.get('Content-Encoding', 'encoded')} data"
        return await deliver(request, wire.error(400, message, request_id), state.default_plan)
    state.recorder.record(request.method, request.path, request.query_string, request.raw_headers, body)
    try:
        plan = plan_request(request.headers, state.default_plan)
    except BadMockHeader as error:
        return await deliver(request, wire.error(400, str(error), request_id), state.default_plan)
    if plan.latency_ms:
        await asyncio.sleep(plan.latency_ms / 1000)
    if plan.status is not None:
        message = f"mock upstream: injected status {plan.status}"
        injected = wire.error(plan.status, message, request_id, plan.error_type, plan.retry_after)
        return await deliver(request, injected, plan)
    try:
        answer = build(body, plan, number, request_id)
    except InvalidRequest as error:
        answer = wire.error(400, str(error), request_id, param=error.param)
    return await deliver(request, answer, plan)


def _wire_for(request: web.Request, state: MockState) -> Wire:
    return state.anthropic if "anthropic-version" in request.headers else state.openai


def _json(status: int, body: bytes) -> JsonAnswer:
    return JsonAnswer(status, {"Content-Type": JSON_CONTENT_TYPE}, body)


async def recorded_requests(request: web.Request) -> web.Response:
    """``GET /_mock/requests``: the kept requests, oldest first."""
    kept = request.app[MOCK_STATE].recorder.snapshot()
    body = {"count": len(kept), "requests": [received.to_dict() for received in kept]}
    return web.Response(body=dump(body), content_type=JSON_CONTENT_TYPE)


async def clear_recorded_requests(request: web.Request) -> web.Response:
    """``DELETE /_mock/requests``: forget the kept requests."""
    request.app[MOCK_STATE].recorder.clear()
    return web.Response(status=204)


async def answer_stats(request: web.Request) -> web.Response:
    """``GET /_mock/stats``: answers in progress, completed, and cut short by the client."""
    return web.Response(body=dump(request.app[MOCK_STATE].stats.to_dict()), content_type=JSON_CONTENT_TYPE)


async def health(request: web.Request) -> web.Response:
    """``GET /_mock/health``: the server is up."""
    return web.Response(body=b'{"status":"ok"}', content_type=JSON_CONTENT_TYPE)
