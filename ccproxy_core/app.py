"""The app factory: settings and plugins in, a FastAPI app out."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pluggy
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ccproxy_core import __version__
from ccproxy_core.access_log import AccessLogger
from ccproxy_core.browser_guard import BrowserGuard
from ccproxy_core.dispatch import RequestHooks, call_lifecycle_hook
from ccproxy_core.errors import PluginLoadError
from ccproxy_core.plugins import get_plugin_manager
from ccproxy_core.providers import PROXY_ROUTES, ROUTE_PREFIXES
from ccproxy_core.proxy import Proxy
from ccproxy_core.settings import Settings
from ccproxy_core.upstream import open_session

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def create_app(settings: Settings, pm: pluggy.PluginManager | None = None) -> FastAPI:
    """Build the app: plugin routes first, then the proxy routes, then the 404 catch-all.

    ``pm`` defaults to a plugin manager built from the installed entry points; tests pass their own.
    """
    pm = pm if pm is not None else get_plugin_manager(settings)
    hooks = RequestHooks(pm)
    proxy = Proxy(settings, hooks, AccessLogger(settings.logging.access_log))
    app = FastAPI(title="ccproxy", version=__version__, lifespan=_lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings
    app.state.plugin_manager = pm
    app.state.request_hooks = hooks
    app.state.hook_errors = hooks.errors
    app.state.proxy = proxy
    # Set when the server starts shutting down, so endless responses (SSE streams) can end
    # and let the graceful shutdown finish; a threading.Event because it is set from outside the loop.
    app.state.draining = threading.Event()
    app.add_api_route("/health", _health, methods=["GET"], tags=["ccproxy"])
    # Added before the plugins' routes, so middleware a plugin adds still sees proxied requests.
    app.add_middleware(ProxyRoutesFirst, routes=_exact_proxy_routes(proxy))
    _add_plugin_routes(app, pm, settings)
    _add_proxy_routes(app, proxy)
    # Added last, so it runs first: no route, plugin middleware or proxy sees a refused request.
    app.state.browser_refusals = Counter()
    app.add_middleware(BrowserGuard, settings=settings, refusals=app.state.browser_refusals)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings, pm, proxy = app.state.settings, app.state.plugin_manager, app.state.proxy
    proxy.session = open_session(settings)
    try:
        await call_lifecycle_hook(pm, "on_startup", app=app, settings=settings)
        app.state.request_hooks.refresh()  # plugins may have registered per-app observers
        yield
        await call_lifecycle_hook(pm, "on_shutdown", reverse=True, app=app, settings=settings)
    finally:
        await proxy.session.close()


async def _health(request: Request) -> dict:
    """Liveness and what is running, for load balancers and probes; never counted as a proxied request."""
    infos = getattr(request.app.state.plugin_manager, "ccproxy_plugins", [])
    return {"status": "ok", "version": __version__, "plugins": [info.name for info in infos if info.enabled]}


def _add_plugin_routes(app: FastAPI, pm: pluggy.PluginManager, settings: Settings) -> None:
    """Call each plugin's ``register_routes`` on its own, refusing a route someone already serves."""
    owners = {key: "ccproxy" for key in _route_keys(app.router.routes)}
    for impl in reversed(pm.hook.register_routes.get_hookimpls()):
        before = len(app.router.routes)
        try:
            impl.function(*[{"app": app, "settings": settings}[name] for name in impl.argnames])
        except Exception as exc:
            raise PluginLoadError(f"plugin {impl.plugin_name} failed in register_routes: {exc}") from exc
        for key in _route_keys(app.router.routes[before:]):
            if key in owners:
                raise PluginLoadError(
                    f"plugin {impl.plugin_name} adds {key[1]} {key[0]}, which plugin {owners[key]} already serves"
                )
            owners[key] = impl.plugin_name
    proxy_keys = {(prefix + route.template, route.method) for route in PROXY_ROUTES for prefix in ROUTE_PREFIXES}
    for key in proxy_keys & owners.keys():
        raise PluginLoadError(f"plugin {owners[key]} adds {key[1]} {key[0]}, which the proxy serves")


def _route_keys(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    keys = []
    for route in routes:
        if isinstance(route, Route):
            keys.extend((route.path, method) for method in sorted(route.methods or ["GET"]))
    return keys


class ProxyRoutesFirst:
    """Pure ASGI middleware: a request for an exact proxy route goes straight to the proxy.

    FastAPI's exception, routing and dependency layers cost about a quarter of the proxy's
    CPU per request (see docs/benchmarks.md) and proxy endpoints need none of them: they
    raise no HTTPException and take no dependencies. Everything else (/health, plugin
    routes, ``/v1/models/{model_id}``, unknown paths, lifespan) goes on to FastAPI.
    Plugins cannot serve a proxy route (``_add_plugin_routes`` refuses), so nothing is shadowed.
    """

    def __init__(self, app: ASGIApp, routes: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            endpoint = self.routes.get((scope["method"], scope["path"]))
            if endpoint is not None:
                response = await endpoint(Request(scope, receive, send))
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _exact_proxy_routes(proxy: Proxy) -> dict[tuple[str, str], Callable[[Request], Awaitable[Response]]]:
    return {
        (route.method, prefix + route.template): proxy.endpoint(route)
        for route in PROXY_ROUTES
        if "{" not in route.template
        for prefix in ROUTE_PREFIXES
    }


def _add_proxy_routes(app: FastAPI, proxy: Proxy) -> None:
    for route in PROXY_ROUTES:
        endpoint = proxy.endpoint(route)
        for prefix in ROUTE_PREFIXES:
            app.add_api_route(prefix + route.template, endpoint, methods=[route.method], include_in_schema=False)
    app.add_api_route("/{path:path}", proxy.handle_unmatched, methods=ALL_METHODS, include_in_schema=False)
