"""The mock's routes beyond chat: Responses, embeddings, completions, moderations, images, audio, files, batches.

Each goes through the same request recording and ``x-mock-*`` plan as the chat routes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from ccproxy_core.testing.mock_upstream import openai_more
from ccproxy_core.testing.mock_upstream.answers import (
    JSON_CONTENT_TYPE,
    InvalidRequest,
    JsonAnswer,
    StreamAnswer,
    dump,
    json_object,
)
from ccproxy_core.testing.mock_upstream.faults import RequestPlan
from ccproxy_core.testing.mock_upstream.files_batches import RESULTS_CONTENT_TYPE, FileStore, multipart_fields
from ccproxy_core.testing.mock_upstream.handlers import MOCK_STATE, MockState, _answer, _wire_for
from ccproxy_core.testing.mock_upstream.responses_wire import ResponsesWire, load_response_request, response_headers

EXTRA_STATE = web.AppKey("ccproxy_mock_extra_state", dict)
"""``{"responses": ResponsesWire, "files": FileStore}`` of one mock server."""

Build = Callable[[bytes, RequestPlan, int, str], JsonAnswer | StreamAnswer]


def new_extra_state() -> dict[str, Any]:
    """Fresh stored responses, files and batches for one mock server."""
    return {"responses": ResponsesWire(), "files": FileStore()}


def _suffix(request_id: str) -> str:
    return request_id.split("_", 1)[-1]


def _json(status: int, value: Any, request_id: str) -> JsonAnswer:
    return JsonAnswer(status, {"Content-Type": JSON_CONTENT_TYPE, "x-request-id": request_id}, dump(value))


async def _openai(request: web.Request, build: Build) -> web.StreamResponse:
    state = request.app[MOCK_STATE]
    return await _answer(request, state, state.openai, build)


async def _either(request: web.Request, build: Callable[..., JsonAnswer]) -> web.StreamResponse:
    """A route both providers have (files): the wire is chosen by the request's headers."""
    state = request.app[MOCK_STATE]
    wire = _wire_for(request, state)
    anthropic = wire is state.anthropic
    return await _answer(request, state, wire, lambda body, plan, number, rid: build(anthropic, body, rid))


# --- Responses API ---------------------------------------------------------------------


async def responses_create(request: web.Request) -> web.StreamResponse:
    """``POST /v1/responses``: a response object, or its event stream."""
    wire: ResponsesWire = request.app[EXTRA_STATE]["responses"]

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer | StreamAnswer:
        payload = load_response_request(body)
        response_id, headers = "resp_" + _suffix(request_id), response_headers(request_id, plan)
        if payload.get("stream") is True:
            return wire.stream_answer(payload, plan, response_id, headers)
        return wire.json_answer(payload, plan, response_id, headers)

    return await _openai(request, build)


async def responses_get(request: web.Request) -> web.StreamResponse:
    """``GET /v1/responses/{id}``, ``DELETE`` of it, and ``GET .../input_items``."""
    wire: ResponsesWire = request.app[EXTRA_STATE]["responses"]
    state = request.app[MOCK_STATE]
    response_id = request.match_info["response_id"]

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        found = wire.retrieve(response_id)
        if found is None:
            return state.openai.error(404, f"Response with id '{response_id}' not found.", request_id)
        if request.method == "DELETE":
            wire.delete(response_id)
            return _json(200, {"id": response_id, "object": "response", "deleted": True}, request_id)
        if request.path.endswith("/input_items"):
            items = wire.input_items(response_id) or []
            return _json(
                200,
                {
                    "object": "list",
                    "data": items,
                    "first_id": items[0]["id"] if items else None,
                    "last_id": items[-1]["id"] if items else None,
                    "has_more": False,
                },
                request_id,
            )
        return _json(200, found, request_id)

    return await _openai(request, build)


# --- Other metered endpoints -----------------------------------------------------------


async def embeddings(request: web.Request) -> web.StreamResponse:
    """``POST /v1/embeddings``."""
    return await _openai(request, lambda body, plan, number, rid: openai_more.embeddings(body, {"x-request-id": rid}))


async def completions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/completions`` (legacy)."""
    return await _openai(
        request,
        lambda body, plan, number, rid: openai_more.legacy_completion(
            body, {"x-request-id": rid}, plan, "cmpl-" + _suffix(rid)
        ),
    )


async def moderations(request: web.Request) -> web.StreamResponse:
    """``POST /v1/moderations``."""
    return await _openai(
        request,
        lambda body, plan, number, rid: openai_more.moderation(body, {"x-request-id": rid}, "modr-" + _suffix(rid)),
    )


async def image_generations(request: web.Request) -> web.StreamResponse:
    """``POST /v1/images/generations``."""
    return await _openai(
        request, lambda body, plan, number, rid: openai_more.image_generation(body, {"x-request-id": rid})
    )


async def transcriptions(request: web.Request) -> web.StreamResponse:
    """``POST /v1/audio/transcriptions`` (multipart)."""
    content_type = request.headers.get("Content-Type", "")
    return await _openai(
        request,
        lambda body, plan, number, rid: openai_more.transcription(
            multipart_fields(content_type, body), {"x-request-id": rid}, plan
        ),
    )


# --- Files -----------------------------------------------------------------------------


async def files_upload(request: web.Request) -> web.StreamResponse:
    """``POST /v1/files`` (multipart), either provider."""
    store: FileStore = request.app[EXTRA_STATE]["files"]
    content_type = request.headers.get("Content-Type", "")

    def build(anthropic: bool, body: bytes, request_id: str) -> JsonAnswer:
        stored = store.add_file(
            ("file_" if anthropic else "file-") + _suffix(request_id), multipart_fields(content_type, body)
        )
        return _json(200, stored.anthropic() if anthropic else stored.openai(), request_id)

    return await _either(request, build)


async def files_list(request: web.Request) -> web.StreamResponse:
    """``GET /v1/files``, either provider's list shape."""
    store: FileStore = request.app[EXTRA_STATE]["files"]

    def build(anthropic: bool, body: bytes, request_id: str) -> JsonAnswer:
        mine = [stored for stored in reversed(store.files.values()) if stored.file_id.startswith("file_") == anthropic]
        if anthropic:
            data = [stored.anthropic() for stored in mine]
            return _json(
                200,
                {
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": False,
                },
                request_id,
            )
        data = [stored.openai() for stored in mine]
        return _json(200, {"object": "list", "data": data, "has_more": False}, request_id)

    return await _either(request, build)


async def file_item(request: web.Request) -> web.StreamResponse:
    """``GET``/``DELETE /v1/files/{id}`` and ``GET /v1/files/{id}/content``."""
    state = request.app[MOCK_STATE]
    store: FileStore = request.app[EXTRA_STATE]["files"]
    file_id = request.match_info["file_id"]

    def build(anthropic: bool, body: bytes, request_id: str) -> JsonAnswer:
        stored = store.files.get(file_id)
        if stored is None:
            wire = state.anthropic if anthropic else state.openai
            return wire.error(404, f"No such File object: {file_id}", request_id)
        if request.method == "DELETE":
            del store.files[file_id]
            deleted = (
                {"id": file_id, "type": "file_deleted"}
                if anthropic
                else {"id": file_id, "object": "file", "deleted": True}
            )
            return _json(200, deleted, request_id)
        if request.path.endswith("/content"):
            return JsonAnswer(
                200, {"Content-Type": "application/octet-stream", "x-request-id": request_id}, stored.content
            )
        return _json(200, stored.anthropic() if anthropic else stored.openai(), request_id)

    return await _either(request, build)


# --- Batches ---------------------------------------------------------------------------


def _runner(
    state: MockState, wire: ResponsesWire, plan: RequestPlan
) -> Callable[[str, dict[str, Any]], tuple[int, Any]]:
    def run_one(url: str, body: dict[str, Any]) -> tuple[int, Any]:
        raw = dump({**body, "stream": False})
        number, request_id = state.openai.new_request_id()
        try:
            if url.endswith("/v1/messages"):
                number, request_id = state.anthropic.new_request_id()
                answer = state.anthropic.completion(raw, plan, number, request_id)
            elif url.endswith("/embeddings"):
                answer = openai_more.embeddings(raw, {})
            elif url.endswith("/responses"):
                answer = wire.json_answer(load_response_request(raw), plan, "resp_" + _suffix(request_id), {})
            else:
                answer = state.openai.completion(raw, plan, number, request_id)
        except InvalidRequest as error:  # one bad request fails its own line, not the batch
            errors = state.anthropic if url.endswith("/v1/messages") else state.openai
            answer = errors.error(400, str(error), request_id, param=error.param)
        if not isinstance(answer, JsonAnswer):
            raise TypeError("a batch request is never streamed")
        return answer.status, json.loads(answer.body)

    return run_one


async def openai_batches(request: web.Request) -> web.StreamResponse:
    """``POST``/``GET /v1/batches``, ``GET /v1/batches/{id}`` and its ``cancel``."""
    state, extra = request.app[MOCK_STATE], request.app[EXTRA_STATE]
    store: FileStore = extra["files"]
    batch_id = request.match_info.get("batch_id")

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        if batch_id is None and request.method == "POST":
            payload = openai_more.json_payload(body, "input_file_id")
            batch: dict[str, Any] | None = store.create_openai_batch(
                "batch_" + _suffix(request_id),
                "file-out" + _suffix(request_id),
                payload,
                _runner(state, extra["responses"], plan),
            )
            return _json(200, batch, request_id)
        if batch_id is None:
            data = list(reversed(store.openai_batches.values()))
            return _json(200, {"object": "list", "data": data, "has_more": False}, request_id)
        batch = store.openai_batches.get(batch_id)
        if batch is None:
            return state.openai.error(404, f"No batch found with id '{batch_id}'.", request_id)
        return _json(200, batch, request_id)

    return await _answer(request, state, state.openai, build)


async def anthropic_batches(request: web.Request) -> web.StreamResponse:
    """Anthropic's Message Batches: create, list, retrieve, cancel, delete, results."""
    state, extra = request.app[MOCK_STATE], request.app[EXTRA_STATE]
    store: FileStore = extra["files"]
    batch_id = request.match_info.get("batch_id")
    base_url = f"{request.scheme}://{request.host}"

    def build(body: bytes, plan: RequestPlan, number: int, request_id: str) -> JsonAnswer:
        if batch_id is None and request.method == "POST":
            batch: dict[str, Any] | None = store.create_anthropic_batch(
                "msgbatch_" + _suffix(request_id), json_object(body or b"{}"), _runner(state, extra["responses"], plan)
            )
            return _json(200, batch, request_id)
        if batch_id is None:
            data = [
                b
                for key in reversed(store.anthropic_batches)
                if (b := store.anthropic_batch(key, base_url)) is not None
            ]
            return _json(
                200,
                {
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": False,
                },
                request_id,
            )
        batch = store.anthropic_batch(batch_id, base_url)
        if batch is None:
            return state.anthropic.error(404, f"message batch {batch_id} not found", request_id)
        if request.path.endswith("/results"):
            results = store.anthropic_results(batch_id) or b""
            return JsonAnswer(200, {"Content-Type": RESULTS_CONTENT_TYPE, "request-id": request_id}, results)
        if request.method == "DELETE":
            del store.anthropic_batches[batch_id]
            return _json(200, {"id": batch_id, "type": "message_batch_deleted"}, request_id)
        return _json(200, batch, request_id)

    return await _answer(request, state, state.anthropic, build)


def add_routes(app: web.Application) -> None:
    """Register every route of this module on the mock app (before its catch-all)."""
    app[EXTRA_STATE] = new_extra_state()
    router = app.router
    router.add_post("/v1/responses", responses_create)
    for method in ("GET", "DELETE"):
        router.add_route(method, "/v1/responses/{response_id}", responses_get)
    router.add_get("/v1/responses/{response_id}/input_items", responses_get, allow_head=False)
    router.add_post("/v1/embeddings", embeddings)
    router.add_post("/v1/completions", completions)
    router.add_post("/v1/moderations", moderations)
    router.add_post("/v1/images/generations", image_generations)
    router.add_post("/v1/audio/transcriptions", transcriptions)
    router.add_post("/v1/files", files_upload)
    router.add_get("/v1/files", files_list, allow_head=False)
    for method in ("GET", "DELETE"):
        router.add_route(method, "/v1/files/{file_id}", file_item)
    router.add_get("/v1/files/{file_id}/content", file_item, allow_head=False)
    router.add_route("*", "/v1/batches", openai_batches)
    router.add_route("*", "/v1/batches/{batch_id}", openai_batches)
    router.add_route("*", "/v1/messages/batches", anthropic_batches)
    for tail in ("", "/results", "/cancel"):
        router.add_route("*", "/v1/messages/batches/{batch_id}" + tail, anthropic_batches)
