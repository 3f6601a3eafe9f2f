"""The app factory: settings and plugins in, a FastAPI app out."""

from __future__ import annotations

import threading
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
from ccproxy_core.dispatch import RequestHooks
from ccproxy_core.errors import PluginLoadError
from ccproxy_core.host import Ccproxy
from ccproxy_core.lifecycle import plugin_order, start_plugins, stop_plugins
from ccproxy_core.plugin_spec import setting_value, specs_of
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
    app = FastAPI(title="ccproxy", version=__version__, lifespan=_lifespan, docs_url=None, redoc_url=None)
    host = Ccproxy(app, settings, pm)
    proxy = Proxy(settings, RequestHooks(pm, host), AccessLogger(settings.logging.access_log))
    proxy.off_paths = _off_paths(pm, settings)
    app.state.ccproxy = host
    app.state.settings = settings
    app.state.plugin_manager = pm
    app.state.hook_errors = host.hook_errors
    app.state.proxy = proxy
    # Set when the server starts shutting down, so endless responses (SSE streams) can end
    # and let the graceful shutdown finish; a threading.Event because it is set from outside the loop.
    app.state.draining = threading.Event()
    app.add_api_route("/health", _health, methods=["GET"], tags=["ccproxy"])
    # Added before the plugins' routes, so middleware a plugin adds still sees proxied requests.
    app.add_middleware(ProxyRoutesFirst, routes=_exact_proxy_routes(proxy))
    _add_plugin_routes(host)
    _add_proxy_routes(app, proxy)
    return app


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    host, proxy = app.state.ccproxy, app.state.proxy
    proxy.session = open_session(host.settings)
    try:
        await start_plugins(host)
        yield
        await stop_plugins(host, plugin_order(host.plugin_manager))
    finally:
        await proxy.session.close()


async def _health(request: Request) -> dict:
    """Liveness and what is running, for load balancers and probes; never counted as a proxied request."""
    infos = getattr(request.app.state.plugin_manager, "ccproxy_plugins", [])
    return {"status": "ok", "version": __version__, "plugins": [info.name for info in infos if info.enabled]}


def _off_paths(pm: pluggy.PluginManager, settings: Settings) -> tuple[tuple[str, str], ...]:
    """Plugins' URL prefixes whose switch is off, with that switch, for the proxy's 404 that names it."""
    # Specs of plugins off by their rule (kept by get_plugin_manager) and of those registered by hand.
    specs = {**getattr(pm, "ccproxy_specs", {}), **specs_of(pm)}
    return tuple((prefix, spec.switch) for spec in specs.values() if spec.switch and not setting_value(settings, spec.switch)
                 for prefix in spec.own_paths)


def _add_plugin_routes(host: Ccproxy) -> None:
    """Call each plugin's ``register_routes`` on its own, in start-up order, refusing a route someone already serves."""
    app, pm = host.app, host.plugin_manager
    owners = {key: "ccproxy" for key in _route_keys(app.router.routes)}
    arguments = {"app": app, "settings": host.settings, "ccproxy": host}
    impls = {impl.plugin_name: impl for impl in pm.hook.register_routes.get_hookimpls()}
    for impl in [impls[name] for name in plugin_order(pm) if name in impls]:
        before = len(app.router.routes)
        try:
            impl.function(*[arguments[name] for name in impl.argnames])
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
