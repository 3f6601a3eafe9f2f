"""The app factory: settings and plugins in, a FastAPI app out."""

from __future__ import annotations

import inspect
import json
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pluggy
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ccproxy_core import __version__
from ccproxy_core.forwarding.exchange_response import ExchangeResponse, cut_running_requests
from ccproxy_core.forwarding.proxy import Proxy
from ccproxy_core.forwarding.route_table import api_path, fallback_route
from ccproxy_core.forwarding.upstream import base_url, close_pools, open_pools
from ccproxy_core.forwarding.websocket_proxy import WebSocketProxy
from ccproxy_core.plugin_host.dispatch import RequestHooks
from ccproxy_core.plugin_host.host import Ccproxy
from ccproxy_core.plugin_host.lifecycle import plugin_order, start_plugins, stop_plugins
from ccproxy_core.plugin_host.plugin_spec import setting_value, specs_of
from ccproxy_core.plugin_host.plugins import get_plugin_manager, running_plugin_names
from ccproxy_core.providers import PROVIDERS
from ccproxy_core.providers.openai import WEBSOCKET_READERS
from ccproxy_core.runtime.access_log import AccessLogger
from ccproxy_core.runtime.plugin_routes import add_plugin_routes
from ccproxy_core.runtime.rate_limited_logging import tell_held_back_bursts
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.safe_values import redact_secrets
from ccproxy_core.security.auth import require_auth_token
from ccproxy_core.security.browser_guard import BrowserGuard
from ccproxy_core.security.cors import CorsPolicy

log = logging.getLogger("ccproxy")

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
# FastAPI's own OpenTelemetry (newer versions) would send a span for every request, its URL and
# query included, to whatever tracer the environment configures; what ccproxy exports is the
# otel plugin's, from the record, made safe. It also asks for the tracer on every request.
_FRAMEWORK_TELEMETRY_OFF = {"tracing": False, "metrics": False, "logs": False}
_NO_FASTAPI_TELEMETRY: dict[str, Any] = (
    {"telemetry": _FRAMEWORK_TELEMETRY_OFF} if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {}
)


def create_app(settings: Settings, pm: pluggy.PluginManager | None = None) -> FastAPI:
    """Build the app: named provider routes first, then plugin routes, then the forwarding catch-all.

    ``pm`` defaults to a plugin manager built from the installed entry points; tests pass their own.
    """
    pm = pm if pm is not None else get_plugin_manager(settings)
    app = FastAPI(
        title="ccproxy",
        version=__version__,
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served below, behind the token like the routes it describes
        **_NO_FASTAPI_TELEMETRY,
    )
    host = Ccproxy(app, settings, pm)
    proxy = Proxy(settings, RequestHooks(pm, host), AccessLogger(settings.logging.access_log))
    proxy.off_paths = _off_paths(pm, settings)
    app.state.ccproxy = host
    app.state.settings = settings
    app.state.plugin_manager = pm
    app.state.hook_errors = host.hook_errors
    app.state.proxy = proxy
    app.state.requests_in_flight = lambda: proxy.requests_in_flight  # the workers' hub counts theirs instead
    app.state.cut_running_requests = lambda: cut_running_requests(proxy)
    # Set when the server starts shutting down, so endless responses (SSE streams) can end
    # and let the graceful shutdown finish; a threading.Event because it is set from outside the loop.
    app.state.draining = threading.Event()
    app.add_api_route("/health", _health, methods=["GET"], tags=["ccproxy"])
    app.add_api_route("/health", _health, methods=["HEAD"], include_in_schema=False)  # as load balancers check
    app.add_api_route(
        "/openapi.json", _openapi, methods=["GET"], include_in_schema=False, dependencies=[Depends(require_auth_token)]
    )
    # Added before the plugins' routes, so middleware a plugin adds still sees proxied requests.
    app.add_middleware(
        ProxyRoutesFirst,
        proxy=proxy,
        websockets=WebSocketProxy(proxy),
        cors=CorsPolicy(settings.security.allowed_origins),
    )
    add_plugin_routes(host)
    _add_proxy_routes(app, proxy)
    # Added last, so it runs first: no route, plugin middleware or proxy sees a refused request.
    app.state.browser_refusals = Counter()
    app.add_middleware(BrowserGuard, settings=settings, refusals=app.state.browser_refusals)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    host, proxy = app.state.ccproxy, app.state.proxy
    proxy.pools = open_pools(host.settings)
    try:
        await start_plugins(host)
        log.info(startup_line(host))
        yield
        await stop_plugins(host, plugin_order(host.plugin_manager))
    finally:
        tell_held_back_bursts()
        await close_pools(proxy.pools)


def startup_line(host: Ccproxy) -> str:
    """Where requests go and which plugins run: what an operator checks first in the log (base URLs
    cannot hold credentials: the settings refuse them; a key pasted into a path is masked)."""
    targets = " and ".join(
        f"{provider.name} at {redact_secrets(base_url(provider, host.settings))}" for provider in PROVIDERS.values()
    )
    running = ", ".join(running_plugin_names(host.plugin_manager)) or "none"
    return f"ccproxy forwards to {targets}; plugins on: {running} (`ccproxy plugins list` says why others are off)"


async def _health(request: Request) -> dict:
    """Liveness and what is running, for load balancers and probes; never counted as a proxied request."""
    return {"status": "ok", "version": __version__, "plugins": running_plugin_names(request.app.state.plugin_manager)}


async def _openapi(request: Request) -> JSONResponse:
    """The OpenAPI schema of ccproxy's own routes and its plugins'."""
    return JSONResponse(request.app.openapi())


def _off_paths(pm: pluggy.PluginManager, settings: Settings) -> tuple[tuple[str, str], ...]:
    """Plugins' URL prefixes whose switch is off, with that switch, for the proxy's 404 that names it."""
    # Specs of plugins off by their rule (kept by get_plugin_manager) and of those registered by hand.
    specs = {**getattr(pm, "ccproxy_specs", {}), **specs_of(pm)}
    return tuple(
        (prefix, spec.switch)
        for spec in specs.values()
        if spec.switch and not setting_value(settings, spec.switch)
        for prefix in spec.own_paths
    )


class ProxyRoutesFirst:
    """Pure ASGI middleware: a request for a named provider route goes straight to the proxy.

    FastAPI's exception, routing and dependency layers cost about a quarter of the proxy's
    CPU per request (see docs/benchmarks.md) and proxy endpoints need none of them: they
    raise no HTTPException and take no dependencies. CORS preflights to the provider paths
    are answered here (never forwarded, never recorded), and WebSocket upgrades of the
    Responses and Realtime endpoints are forwarded. Everything else (/health, plugin
    routes, API paths no route names, other paths, lifespan) goes on to FastAPI, whose
    catch-all forwards the API paths. Plugins cannot serve a named provider route
    (``plugin_routes.add_plugin_routes`` refuses), so nothing is shadowed.
    """

    def __init__(self, app: ASGIApp, proxy: Proxy, websockets: WebSocketProxy, cors: CorsPolicy) -> None:
        self.app, self.proxy, self.websockets, self.cors = app, proxy, websockets, cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and not scope.get("root_path"):
            path = api_path(scope["path"])
            if path is not None:
                if self.cors.is_preflight(scope):
                    await self.cors.answer_preflight(scope, send)
                    return
                route = self.proxy.routes.match(scope["method"], path)
                if route is None and "\n" in path:  # FastAPI's catch-all does not match a line feed
                    route = fallback_route(scope["method"], path)
                if route is not None:
                    await ExchangeResponse(self.proxy, route)(scope, receive, send)
                    return
        elif kind == "websocket" and (path := api_path(scope["path"])) is not None:
            if path in WEBSOCKET_READERS:
                await self.websockets.handle(scope, receive, send)
            else:
                await refuse_socket(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def refuse_socket(scope: Scope, receive: Receive, send: Send) -> None:
    """A WebSocket upgrade of an API path no provider serves sockets on: a JSON 404 naming those it does."""
    if (await receive())["type"] != "websocket.connect":
        return
    paths = " and ".join(sorted(WEBSOCKET_READERS))
    body = json.dumps({"detail": f"ccproxy forwards WebSocket upgrades only on {paths}"}).encode()
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _add_proxy_routes(app: FastAPI, proxy: Proxy) -> None:
    app.add_api_route("/{path:path}", proxy.handle, methods=ALL_METHODS, include_in_schema=False)
