"""The proxy routes: forward the request unchanged, send the answer back unchanged, record it."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode

import aiohttp
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.types import Scope
from yarl import URL

from ccproxy_core.access_log import AccessLogger
from ccproxy_core.cost import PriceBook
from ccproxy_core.dispatch import RequestHooks
from ccproxy_core.exchange import UPSTREAM_COST_HEADER, Exchange
from ccproxy_core.providers import LOCAL_ERROR_TYPES, ProxyRoute, error_body, service_type_for, upstream_base_url
from ccproxy_core.record import RequestContext
from ccproxy_core.response_headers import rate_limits, returned_headers
from ccproxy_core.responses import BufferedProxyResponse, StreamingProxyResponse
from ccproxy_core.settings import Settings
from ccproxy_core.upstream import auto_headers_to_skip, forwarded_headers
from ccproxy_core.usage import request_model_and_stream, usage_from_json

log = logging.getLogger("ccproxy.proxy")

UNMATCHED = "unmatched"
OWN_ENDPOINTS = (
    ("/metrics", "OBSERVABILITY__METRICS_ENDPOINT_ENABLED"),
    ("/logs", "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED"),
    ("/dashboard", "OBSERVABILITY__DASHBOARD_ENABLED"),
)
_SECRET_QUERY_WORDS = ("key", "token", "secret", "password", "auth")


class Proxy:
    """Forwards requests to the providers over one pooled session and records each one."""

    def __init__(self, settings: Settings, hooks: RequestHooks, access_log: AccessLogger) -> None:
        self.settings, self.hooks, self.access_log = settings, hooks, access_log
        self.session: aiohttp.ClientSession | None = None
        self.prices = PriceBook()

    def endpoint(self, route: ProxyRoute) -> Callable[[Request], Awaitable[Response]]:
        """A FastAPI endpoint serving ``route``."""

        async def proxy_endpoint(request: Request) -> Response:
            return await self.handle(request, route)

        proxy_endpoint.__name__ = f"proxy_{route.method.lower()}_{route.template.strip('/').replace('/', '_')}"
        return proxy_endpoint

    async def handle(self, request: Request, route: ProxyRoute) -> Response:
        body = await _read_limited(request, self.settings.server.max_request_bytes)
        exchange = self._start_exchange(request, route.template, service_type_for(route, request.headers), body)
        await self.hooks.call("on_request_start", context=exchange.context)
        if (refusal := await self._admit(exchange)) is not None:
            return refusal
        if body is None:
            limit = self.settings.server.max_request_bytes
            return self._local_error(exchange, 413, "request_too_large", f"request body is larger than SERVER__MAX_REQUEST_BYTES={limit}")
        return await self._forward(request, exchange, body)

    async def handle_unmatched(self, request: Request) -> Response:
        """Unknown paths: a provider-shaped 404, recorded under the shared endpoint label.

        ccproxy's own endpoints, when their plugin is off, answer a 404 naming the setting
        that turns them on, and are not counted as proxied requests.
        """
        if (setting := _own_endpoint_setting(request.url.path)) is not None:
            return JSONResponse({"detail": f"{request.url.path} is off: set {setting}=true to serve it"}, status_code=404)
        exchange = self._start_exchange(request, UNMATCHED, service_type_for(ProxyRoute("", "", None), request.headers), b"")
        await self.hooks.call("on_request_start", context=exchange.context)
        message = f"ccproxy does not proxy {request.method} {request.url.path}"
        return self._local_error(exchange, 404, "not_found", message)

    def _start_exchange(self, request: Request, endpoint: str, service_type: str, body: bytes | None) -> Exchange:
        model, streaming = request_model_and_stream(body) if body else (None, False)
        headers, scope = request.headers, request.scope
        client = scope.get("client")
        context = RequestContext(
            request_id=headers.get("x-request-id") or _new_request_id(),
            method=scope["method"],
            path=_url_path(scope),
            endpoint=endpoint,
            query=_redact_query(scope["query_string"].decode()),
            client_ip=client[0] if client else None,
            user_agent=headers.get("user-agent"),
            service_type=service_type,
            model=model,
            streaming=streaming,
            started_at=datetime.now(UTC),
            started_monotonic=time.perf_counter(),
            traceparent=headers.get("traceparent"),
            tracestate=headers.get("tracestate"),
        )
        return Exchange(context=context, request_bytes=len(body or b""))

    async def _forward(self, request: Request, exchange: Exchange, body: bytes) -> Response:
        ctx = exchange.context
        url = upstream_base_url(ctx.service_type, self.settings) + ctx.path.removeprefix("/api")
        if query := request.scope["query_string"]:
            url += "?" + query.decode()
        headers = forwarded_headers(request.headers, ctx.service_type, self.settings)
        exchange.upstream_sent_at = time.perf_counter()
        try:
            upstream = await self.session.request(ctx.method, URL(url, encoded=True), data=body or None, headers=headers,
                                                  skip_auto_headers=auto_headers_to_skip(headers))
        except asyncio.TimeoutError:
            return self._local_error(exchange, 504, "upstream_timeout", f"no answer from {ctx.service_type} in time")
        except (aiohttp.ClientError, OSError) as exc:
            return self._local_error(exchange, 502, "upstream_unreachable", f"cannot reach {ctx.service_type}: {exc}")
        return await self._relay(exchange, upstream)

    async def _relay(self, exchange: Exchange, upstream: aiohttp.ClientResponse) -> Response:
        exchange.upstream_headers_at = time.perf_counter()
        exchange.status_code = exchange.upstream_status = upstream.status
        raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers]
        exchange.rate_limits = rate_limits(raw)
        exchange.note_sdk_cost(upstream.headers.get(UPSTREAM_COST_HEADER))
        headers = returned_headers(raw, exchange.context.request_id)
        if exchange.extra_headers:
            headers += exchange.extra_headers
        if upstream.content_type == "text/event-stream" and upstream.status < 400:
            return StreamingProxyResponse(exchange, upstream, headers, self._finish)
        try:
            payload = await upstream.read()
        except asyncio.TimeoutError:
            return self._local_error(exchange, 504, "upstream_timeout", "the provider stopped sending its answer")
        except aiohttp.ClientError as exc:
            return self._local_error(exchange, 502, "upstream_stream_aborted", f"the provider broke off its answer: {exc}")
        finally:
            upstream.release()
        exchange.upstream_done_at = time.perf_counter()
        exchange.usage = usage_from_json(exchange.context.service_type, payload)
        _note_upstream_failure(exchange, upstream, payload)
        return BufferedProxyResponse(exchange, upstream.status, headers, payload, self._finish)

    async def _admit(self, exchange: Exchange) -> Response | None:
        """Ask the plugins; a refusal is answered here, and their headers go on the response either way."""
        answers = await self.hooks.admit(exchange.context)
        if not answers:
            return None
        exchange.extra_headers = [(name.encode("latin-1"), value.encode("latin-1"))
                                  for answer in answers for name, value in answer.headers]
        refusal = next((answer for answer in answers if answer.refuse_status), None)
        if refusal is None:
            return None
        return self._local_error(exchange, refusal.refuse_status, refusal.error_type or "refused", refusal.message)

    def _local_error(self, exchange: Exchange, status: int, error_type: str, message: str) -> Response:
        service_type = exchange.context.service_type
        exchange.fail(status, error_type, message)
        body = error_body(service_type, LOCAL_ERROR_TYPES.get((service_type, status), "api_error"), message)
        headers = [(b"x-request-id", exchange.context.request_id.encode("latin-1")), (b"content-type", b"application/json")]
        return BufferedProxyResponse(exchange, status, headers + exchange.extra_headers, body, self._finish)

    async def _finish(self, exchange: Exchange) -> None:
        record = exchange.to_record(self.prices)
        self.access_log.emit(record)
        await self.hooks.call("on_request_end", context=exchange.context, record=record)


def _own_endpoint_setting(path: str) -> str | None:
    for prefix, setting in OWN_ENDPOINTS:
        if path == prefix or path.startswith(prefix + "/"):
            return setting
    return None


def _note_upstream_failure(exchange: Exchange, upstream: aiohttp.ClientResponse, payload: bytes) -> None:
    if upstream.status >= 400:
        usage = exchange.usage
        exchange.fail(upstream.status, usage.error_type or f"http_{upstream.status}", usage.error_message or "")
    elif upstream.content_type == "application/json" and payload and exchange.usage.response_model is None and not _is_json(payload):
        exchange.fail(upstream.status, "upstream_invalid_json", "the provider answered with a body that is not valid JSON")


def _is_json(payload: bytes) -> bool:
    try:
        json.loads(payload)
    except ValueError:
        return False
    return True


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The request body, or ``None`` when it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    # ASGI receive() directly: Starlette's request.stream() generator costs more than the copy.
    chunks, size, receive = [], 0, request.receive
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _new_request_id() -> str:
    """128 random bits in hex, like ``uuid4().hex``, in a fifth of the time and without a system call.

    uuid4() reads os.urandom, a system call that also hands the GIL to any busy background
    thread (the DuckDB writer). Ids need to be unique, not secret; ``random`` is seeded
    from os.urandom and re-seeded after fork.
    """
    return f"{random.getrandbits(128):032x}"


def _url_path(scope: Scope) -> str:
    """``request.url.path`` without building the whole URL (Starlette escapes these three)."""
    return scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")


def _redact_query(query: str) -> str:
    """Query strings may carry keys (``?key=...``); never let one into a record."""
    if not query or not any(word in query.lower() for word in _SECRET_QUERY_WORDS):
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "***" if any(w in k.lower() for w in _SECRET_QUERY_WORDS) else v) for k, v in pairs])
