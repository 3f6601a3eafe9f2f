"""The mock's WebSocket endpoints: the Responses API's WebSocket mode and the Realtime API.

``GET /v1/responses`` upgraded: each client ``response.create`` message (the body of
``POST /v1/responses`` plus ``"type"``) is answered with the same ``response.*`` events a
streamed answer has, one text message each; a message that is not a valid
``response.create`` gets an ``error`` event. ``GET /v1/realtime?model=...`` upgraded: a
``session.created`` event first; each ``response.create`` gets ``response.created``, one
``response.output_text.delta`` per delta and ``response.done`` with usage (input tokens:
the characters of every text the client sent so far // 4). ``x-mock-status`` on the
upgrade request refuses it with that status and the provider's error body, as a real
provider refuses a bad key; the other ``x-mock-*`` headers shape every answer on the socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import WSMsgType, web

from ccproxy_core.testing.mock_upstream.answers import InvalidRequest, dump, json_object
from ccproxy_core.testing.mock_upstream.api_handlers import EXTRA_STATE
from ccproxy_core.testing.mock_upstream.delivery import deliver
from ccproxy_core.testing.mock_upstream.faults import BadMockHeader, RequestPlan, plan_request
from ccproxy_core.testing.mock_upstream.handlers import MOCK_STATE
from ccproxy_core.testing.mock_upstream.responses_wire import ResponsesWire
from ccproxy_core.testing.mock_upstream.tokens import CHARACTERS_PER_TOKEN, delta_text, output_tokens, prompt_characters


async def _open(request: web.Request) -> tuple[web.WebSocketResponse | web.StreamResponse, RequestPlan | None]:
    """Record the upgrade, apply its plan; the socket, or the refusal already sent."""
    state = request.app[MOCK_STATE]
    _, request_id = state.openai.new_request_id()
    state.recorder.record(request.method, request.path, request.query_string, request.raw_headers, b"")
    try:
        plan = plan_request(request.headers, state.default_plan)
    except BadMockHeader as error:
        return await deliver(request, state.openai.error(400, str(error), request_id), state.default_plan), None
    if request.headers.get("Upgrade", "").lower() != "websocket":
        message = f"{request.path} takes POST, or GET with a WebSocket upgrade"
        return await deliver(request, state.openai.error(405, message, request_id), state.default_plan), None
    if plan.status is not None:
        answer = state.openai.error(
            plan.status, f"mock upstream: injected status {plan.status}", request_id, plan.error_type, plan.retry_after
        )
        return await deliver(request, answer, plan), None
    socket = web.WebSocketResponse(protocols=("realtime",))
    socket.headers["x-request-id"] = request_id
    await socket.prepare(request)
    return socket, plan


async def responses_socket(request: web.Request) -> web.StreamResponse:
    """``GET /v1/responses`` with an upgrade: the Responses API over a WebSocket."""
    socket, plan = await _open(request)
    if plan is None or not isinstance(socket, web.WebSocketResponse):
        return socket
    state, wire = request.app[MOCK_STATE], request.app[EXTRA_STATE]["responses"]
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        _, request_id = state.openai.new_request_id()
        for event in _responses_events(wire, message.data, plan, "resp_" + request_id.split("_", 1)[-1]):
            if plan.delta_interval_ms and event["type"] == "response.output_text.delta":
                await asyncio.sleep(plan.delta_interval_ms / 1000)
            await socket.send_str(dump(event).decode())
    return socket


def _responses_events(wire: ResponsesWire, text: str, plan: RequestPlan, response_id: str) -> list[dict[str, Any]]:
    try:
        event = json_object(text)
        if event.get("type") != "response.create":
            raise InvalidRequest("expected a response.create event", "type")
        payload = {key: value for key, value in event.items() if key not in ("type", "stream")}
        if not isinstance(payload.get("model"), str):
            raise InvalidRequest("model: Field required (a non-empty string)", "model")
        events = wire.events(payload, plan, response_id)
    except (ValueError, InvalidRequest) as error:
        param = getattr(error, "param", None)
        return [
            {
                "type": "error",
                "sequence_number": 0,
                "code": "invalid_request_error",
                "message": str(error),
                "param": param,
            }
        ]
    return [{**event, "sequence_number": index} for index, event in enumerate(events)]


async def realtime_socket(request: web.Request) -> web.StreamResponse:
    """``GET /v1/realtime?model=...`` with an upgrade: text answers with usage in ``response.done``."""
    socket, plan = await _open(request)
    if plan is None or not isinstance(socket, web.WebSocketResponse):
        return socket
    model = request.query.get("model", "gpt-realtime")
    counter = iter(range(1, 1 << 62))
    session_id = "sess_" + request.headers.get("x-request-id", "mock")[-12:]
    await socket.send_str(
        dump(
            {
                "type": "session.created",
                "event_id": f"event_{next(counter)}",
                "session": {"id": session_id, "object": "realtime.session", "model": model},
            }
        ).decode()
    )
    characters = 0
    async for message in socket:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            event = json_object(message.data)
        except InvalidRequest:  # the mock ignores what is not an event, as it ignores unknown events
            continue
        characters += prompt_characters(event.get("item")) + prompt_characters(event.get("response"))
        if event.get("type") == "response.create":
            for answer_event in _realtime_answer(model, plan, max(1, characters // CHARACTERS_PER_TOKEN), counter):
                await socket.send_str(dump(answer_event).decode())
    return socket


def _realtime_answer(model: str, plan: RequestPlan, input_tokens: int, counter: Any) -> list[dict[str, Any]]:
    number = next(counter)
    response_id, item_id = f"resp_rt{number}", f"item_rt{number}"
    response: dict[str, Any] = {
        "id": response_id,
        "object": "realtime.response",
        "status": "in_progress",
        "output": [],
        "usage": None,
    }
    events: list[dict[str, Any]] = [{"type": "response.created", "response": response}]
    events += [
        {
            "type": "response.output_text.delta",
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
            "delta": delta_text(i),
        }
        for i in range(plan.delta_count)
    ]
    out = output_tokens(plan.delta_count)
    usage = {
        "total_tokens": input_tokens + out,
        "input_tokens": input_tokens,
        "output_tokens": out,
        "input_token_details": {"cached_tokens": 0, "text_tokens": input_tokens, "audio_tokens": 0},
        "output_token_details": {"text_tokens": out, "audio_tokens": 0},
    }
    events.append({"type": "response.done", "response": {**response, "status": "completed", "usage": usage}})
    return [{**event, "event_id": f"event_{next(counter)}"} for event in events]


def add_routes(app: web.Application) -> None:
    """Register the WebSocket endpoints (``GET`` of the two paths) before the mock's catch-all."""
    app.router.add_get("/v1/responses", responses_socket, allow_head=False)
    app.router.add_get("/v1/realtime", realtime_socket, allow_head=False)
