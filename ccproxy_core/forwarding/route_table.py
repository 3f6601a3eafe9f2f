"""Finding the route of a request among the providers' routes, and the route of any other API path.

The routes themselves live with their providers (``ccproxy_core/providers/``).

A path under ``/v1/`` that no route names is still forwarded, to the provider its headers
point to, and recorded under ``/v1/<resource>/*`` for a resource either provider documents,
else under ``/v1/*``: the ``endpoint`` label stays bounded whatever paths clients invent.
"""

from __future__ import annotations

import re

from ccproxy_core.providers import PROXY_ROUTES, ProxyRoute

API_PREFIX = "/v1/"

UNMATCHED = "unmatched"
"""The endpoint of a request for a path outside the provider APIs: answered 404 here, never forwarded."""

OUTSIDE_API_PREFIX = frozenset(route.template for route in PROXY_ROUTES if not route.template.startswith(API_PREFIX))
"""Provider paths outside ``/v1/`` that are forwarded as they are (Anthropic's ``/api/hello``)."""

KNOWN_RESOURCES = frozenset(
    {route.template.split("/")[2] for route in PROXY_ROUTES if route.template.startswith(API_PREFIX)}
    | {
        # Further resources of the two APIs, forwarded under their own bounded endpoint.
        "assistants",
        "threads",
        "vector_stores",
        "fine_tuning",
        "containers",
        "conversations",
        "evals",
        "videos",
        "realtime",
        "organization",
        "organizations",
        "compliance",
        "skills",
        "chatkit",
        "agents",
        "environments",
        "sessions",
        "vaults",
    }
)


def _one_provider_resources() -> dict[str, str]:
    """Resources only one provider has (``messages``: Anthropic's; ``chat``: OpenAI's): any path under
    them goes to that provider, whatever the headers, as the routes it names do."""
    providers: dict[str, set[str | None]] = {}
    for route in PROXY_ROUTES:
        if route.template.startswith(API_PREFIX):
            providers.setdefault(route.template.split("/")[2], set()).add(route.service_type)
    return {resource: kind for resource, kinds in providers.items() if len(kinds) == 1 for kind in kinds if kind}


ONE_PROVIDER_RESOURCES = _one_provider_resources()


MANAGED_BY_POST = (
    "/v1/vector_stores",
    "/v1/conversations",
    "/v1/realtime/client_secrets",
    "/v1/realtime/sessions",
    "/v1/realtime/transcription_sessions",
    "/v1/organization",
    "/v1/organizations",
    "/v1/compliance",
)
"""Paths whose ``POST`` creates, changes or searches stored objects, or hands out a short-lived key
(OpenAI's), or administers the organization (OpenAI's ``organization``, Anthropic's Admin API under
``organizations`` and its Compliance API): no call of theirs is billed (vector stores are billed by the
gigabyte-day they hold, which no answer shows), so they are management calls, cost 0 when they went
well, not calls of unknown cost."""


class RouteTable:
    """Finds the route of a method and path in a few dictionary lookups."""

    def __init__(self, routes: tuple[ProxyRoute, ...] = PROXY_ROUTES) -> None:
        self._exact: dict[tuple[str, str], ProxyRoute] = {}
        self._templated: dict[tuple[str, int], list[tuple[tuple[str | None, ...], ProxyRoute]]] = {}
        for route in routes:
            if "{" not in route.template:
                self._exact[(route.method, route.template)] = route
                continue
            parts = tuple(None if part.startswith("{") else part for part in route.template.split("/"))
            self._templated.setdefault((route.method, len(parts)), []).append((parts, route))

    def match(self, method: str, path: str) -> ProxyRoute | None:
        """The route serving ``method path`` (``path`` without the ``/api`` prefix), else ``None``.

        ``HEAD`` is served by the ``GET`` route of the same path, a path with empty segments by the route
        of its :func:`canonical_path`.
        """
        if method == "HEAD":
            method = "GET"
        route = self._exact.get((method, path))
        if route is not None:
            return route
        parts = path.split("/")
        for pattern, candidate in self._templated.get((method, len(parts)), ()):
            if all((want is None and part) or want == part for want, part in zip(pattern, parts, strict=True)):
                return candidate
        canonical = canonical_path(path)
        return self.match(method, canonical) if canonical != path else None


def canonical_path(path: str) -> str:
    """``path`` without empty segments (``//``, a trailing ``/``): the resource a server that merges
    slashes, as nginx does by default, serves; it is forwarded as sent, and accounted as this."""
    if "//" not in path and not path.endswith("/"):
        return path
    return _SLASHES.sub("/", path).rstrip("/") or "/"


_SLASHES = re.compile(r"/{2,}")


def api_path(path: str) -> str | None:
    """``path`` without the ``/api`` prefix when it is under a provider's ``/v1/``, else ``None``."""
    if path.startswith("/api/"):
        path = path[4:]
    return path if path.startswith(API_PREFIX) else None


def fallback_route(method: str, path: str) -> ProxyRoute:
    """The route of an API path no route names: provider by headers, a bounded endpoint.

    The endpoint is ``/v1/<resource>/*`` for a resource either provider documents, else
    ``/v1/*``; the provider is the resource's when only one provider has it. A ``POST`` may be
    a metered call ccproxy does not know yet, so its answer is read for usage (but on
    :data:`MANAGED_BY_POST`); other methods read or delete stored objects, whose usage was counted.
    """
    resource = path[len(API_PREFIX) :].split("/", 1)[0]
    endpoint = f"/v1/{resource}/*" if resource in KNOWN_RESOURCES else "/v1/*"
    metered = method == "POST" and not any(path == p or path.startswith(p + "/") for p in MANAGED_BY_POST)
    return ProxyRoute(endpoint, method, ONE_PROVIDER_RESOURCES.get(resource), "usage" if metered else "none")
