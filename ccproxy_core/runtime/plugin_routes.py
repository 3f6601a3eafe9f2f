"""The routes plugins add: each plugin's ``register_routes`` in start-up order, and the paths none may take.

A plugin may not serve a path another plugin or ccproxy serves, a named provider route, or any
path under a provider's ``/v1/`` (or ``/api/v1/``): those are forwarded to the provider and
recorded. A template counts when any path it can match is one (``/{a}/assistants`` can be
``/v1/assistants``), as does a mount that can hold one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from starlette.convertors import CONVERTOR_TYPES
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from ccproxy_core.errors import PluginLoadError
from ccproxy_core.plugin_host.host import Ccproxy
from ccproxy_core.plugin_host.lifecycle import plugin_order
from ccproxy_core.plugin_host.plugin_spec import BUILT_IN_DISTRIBUTION
from ccproxy_core.providers import PROXY_ROUTES, ROUTE_PREFIXES


def add_plugin_routes(host: Ccproxy) -> None:
    """Call each plugin's ``register_routes`` on its own, in start-up order, refusing a route someone already serves."""
    app, pm = host.app, host.plugin_manager
    owners = dict.fromkeys(_route_keys(app.router.routes), "ccproxy")
    arguments = {"app": app, "settings": host.settings, "ccproxy": host}
    impls = {impl.plugin_name: impl for impl in pm.hook.register_routes.get_hookimpls()}
    added: list[tuple[str, BaseRoute]] = []
    # ccproxy's own plugins first: their routes come first, and a clash names the plugin that came to take one.
    built_in = {info.name for info in getattr(pm, "ccproxy_plugins", []) if info.distribution == BUILT_IN_DISTRIBUTION}
    order = sorted(plugin_order(pm), key=lambda name: name not in built_in)
    for impl in [impls[name] for name in order if name in impls]:
        before = len(app.router.routes)
        try:
            impl.function(*[arguments[name] for name in impl.argnames])
        except Exception as exc:
            raise PluginLoadError(f"plugin {impl.plugin_name} failed in register_routes: {exc}") from exc
        added.extend((impl.plugin_name, route) for route in app.router.routes[before:])
        for key in _route_keys(app.router.routes[before:]):
            if key in owners:
                raise PluginLoadError(
                    f"plugin {impl.plugin_name} adds {key[1]} {key[0]}, which plugin {owners[key]} already serves"
                )
            owners[key] = impl.plugin_name
    for key in _PROXY_KEYS & owners.keys():
        raise PluginLoadError(f"plugin {owners[key]} adds {key[1]} {key[0]}, which the proxy serves")
    for plugin_name, route in [(name, leaf) for name, entry in added for leaf in _leaf_routes([entry])]:
        if takes_api_paths(route):
            raise PluginLoadError(
                f"plugin {plugin_name} adds {getattr(route, 'path', route)!r}, which would take provider API "
                "paths (/v1/..., /api/v1/...): those are forwarded to the provider; serve it elsewhere"
            )
        if (taken := _proxy_path_taken(route)) is not None:
            raise PluginLoadError(
                f"plugin {plugin_name} adds {getattr(route, 'path', route)!r}, which would take {taken[1]} "
                f"{taken[0]}: the proxy serves it; serve it elsewhere"
            )


# The proxy answers HEAD as GET (the provider is asked with GET, the body dropped).
_PROXY_KEYS = frozenset(
    (prefix + route.template, method)
    for route in PROXY_ROUTES
    for prefix in ROUTE_PREFIXES
    if not (prefix and route.template.startswith(prefix + "/"))  # /api/hello has no /api/api/hello
    for method in ((route.method, "HEAD") if route.method == "GET" else (route.method,))
)


def _proxy_path_taken(route: BaseRoute) -> tuple[str, str] | None:
    """A fixed path and method the proxy serves outside /v1/ (``/api/hello``) that a plugin's template or
    mount would answer instead, if any."""
    if isinstance(route, WebSocketRoute):
        return None  # answers WebSocket upgrades only, which the proxy serves elsewhere
    pattern = getattr(route, "path_regex", None)
    methods = getattr(route, "methods", None)  # None for a mount: every method
    for path, method in sorted(_PROXY_KEYS):
        if "{" not in path and pattern is not None and pattern.match(path) and (methods is None or method in methods):
            return path, method
    return None


_API_PATH_PROBES = ("/v1/ccproxy-route-probe", "/api/v1/ccproxy-route-probe")
_API_PREFIXES = (("v1",), ("api", "v1"))
_PARAMETER = re.compile(r"{[a-zA-Z_][a-zA-Z0-9_]*(?::([a-zA-Z_][a-zA-Z0-9_]*))?}")


def takes_api_paths(route: BaseRoute) -> bool:
    """Whether a route or mount would answer a path under /v1/ (a template, a ``:path`` catch-all, a mount)."""
    pattern = getattr(route, "path_regex", None)
    path = getattr(route, "path", "")
    under_api = any(path == prefix or path.startswith(prefix + "/") for prefix in ("/v1", "/api/v1"))
    if under_api or (pattern is not None and any(pattern.match(probe) for probe in _API_PATH_PROBES)):
        return True
    segments = path.strip("/").split("/") if path.strip("/") else []
    is_mount = isinstance(route, Mount)
    return any(_could_begin_with(segments, prefix, is_mount) for prefix in _API_PREFIXES)


def _could_begin_with(segments: list[str], prefix: tuple[str, ...], open_ended: bool) -> bool:
    """Whether a template's ``segments`` can match a path that starts with ``prefix`` and goes on
    (``/{a}/assistants`` can be ``/v1/assistants``); ``open_ended`` for a mount, which takes every path below it."""
    for position, wanted in enumerate(prefix):
        if position == len(segments):
            return open_ended
        segment = segments[position]
        if any(match.group(1) == "path" for match in _PARAMETER.finditer(segment)):
            return True  # a :path parameter takes the rest, whatever it is
        if not re.fullmatch(_segment_regex(segment), wanted):
            return False
    return open_ended or len(segments) > len(prefix)


def _segment_regex(segment: str) -> str:
    """One segment of a route template as a regular expression, each parameter as its convertor matches."""
    parts, last = [], 0
    for match in _PARAMETER.finditer(segment):
        parts.append(re.escape(segment[last : match.start()]))
        convertor = CONVERTOR_TYPES.get(match.group(1) or "str")
        parts.append(f"(?:{convertor.regex})" if convertor is not None else "[^/]+")
        last = match.end()
    parts.append(re.escape(segment[last:]))
    return "".join(parts)


def _route_keys(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    keys: list[tuple[str, str]] = []
    for route in _leaf_routes(routes):
        if isinstance(route, Route):
            keys.extend((route.path, method) for method in sorted(route.methods or ["GET"]))
        elif getattr(route, "path", "") and getattr(route, "methods", None):  # a route of an included router
            keys.extend((route.path, method) for method in sorted(route.methods))
    return keys


def _leaf_routes(routes: list[Any]) -> Iterator[Any]:
    """``routes`` with each router added by ``include_router`` replaced by its routes, at any depth.

    FastAPI keeps an included router as one entry whose routes, with their full paths, it
    lists in ``effective_candidates()``; a check that only saw the entry would miss them.
    """
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _leaf_routes(candidates())
        else:
            yield route
