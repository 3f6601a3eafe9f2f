"""The providers ccproxy knows, one module each, and the routes they serve.

Adding a provider is adding a module that builds a :class:`Provider` and listing it in
:data:`PROVIDERS`. The core looks a provider up by its ``service_type`` and never names one.
"""

from __future__ import annotations

from collections.abc import Mapping

from ccproxy_core.providers import anthropic, openai
from ccproxy_core.providers.base import Provider, ProxyRoute, StreamReader, StreamState, routes
from ccproxy_core.providers.openai import STORED_RESPONSE

ANTHROPIC = anthropic.NAME
OPENAI = openai.NAME

PROVIDERS: dict[str, Provider] = {provider.name: provider for provider in (anthropic.PROVIDER, openai.PROVIDER)}
"""Every provider by ``service_type``, in the order used to tell shared routes apart."""

FALLBACK = OPENAI
"""Who serves a shared route (``/v1/models``) when no provider claims the request's headers."""

# Clients configured for ccproxy's usual base URL (http://host:port/api) reach the same routes.
ROUTE_PREFIXES = ("", "/api")

SHARED_ROUTES = (
    *routes(None, "free", "GET /v1/models", "GET /v1/models/{model_id}"),  # listing models costs nothing
    *routes(
        None,
        "none",
        "POST /v1/files",
        "GET /v1/files",
        "GET /v1/files/{file_id}",
        "DELETE /v1/files/{file_id}",
    ),
    # OpenAI batch output files are fetched here (their result lines are accounted); other
    # file contents have no result lines and pass through unread. See ``reader_for``.
    *routes(None, "batch_results", "GET /v1/files/{file_id}/content"),
)

PROXY_ROUTES: tuple[ProxyRoute, ...] = (
    *(route for provider in PROVIDERS.values() for route in provider.routes),
    *SHARED_ROUTES,
)


FREE_ENDPOINTS = frozenset(route.template for route in PROXY_ROUTES if route.reader == "free")
"""Endpoints the providers never bill (token counting, model lists, moderations): a budget never refuses them."""
_STARTS_A_BATCH = frozenset({("POST", "/v1/messages/batches"), ("POST", "/v1/batches")})
NO_NEW_SPEND = frozenset(
    (route.method, route.template)
    for route in PROXY_ROUTES
    if route.reader in ("free", "none", "batch_results", STORED_RESPONSE)
    and (route.method, route.template) not in _STARTS_A_BATCH
)
"""Calls that start no new spend, as ``(method, endpoint)``: free ones, and managing, cancelling or reading
what earlier calls started (a batch's results, a background response). A spent budget lets them through:
refusing a cancel would keep spend running, refusing results would withhold what was paid for."""


def reader_for(route: ProxyRoute, service_type: str) -> str:
    """How an answer on ``route`` is read when ``service_type`` serves it. Anthropic keeps no batch
    output in files (its results have a route of their own), so a file's content there is only a
    file, however much it looks like results: the download is not billed."""
    if route.service_type is None and route.reader == "batch_results" and service_type != "openai":
        return "none"
    return route.reader


def provider_for(service_type: str) -> Provider:
    """The provider serving ``service_type``."""
    return PROVIDERS[service_type]


def service_type_for(route: ProxyRoute, headers: Mapping[str, str]) -> str:
    """The provider of a request; shared paths are told apart by the headers each provider's clients send."""
    if route.service_type is not None:
        return route.service_type
    for provider in PROVIDERS.values():
        if provider.claims_request(headers):
            return provider.name
    return FALLBACK


__all__ = [
    "ANTHROPIC",
    "FREE_ENDPOINTS",
    "NO_NEW_SPEND",
    "OPENAI",
    "PROVIDERS",
    "PROXY_ROUTES",
    "ROUTE_PREFIXES",
    "Provider",
    "ProxyRoute",
    "StreamReader",
    "StreamState",
    "provider_for",
    "reader_for",
    "service_type_for",
]
