"""Which proxy routes exist, which provider serves each, and how provider errors look."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.datastructures import Headers

from ccproxy_core.settings import Settings

ANTHROPIC = "anthropic"
OPENAI = "openai"

# Clients configured for ccproxy's usual base URL (http://host:port/api) reach the same routes.
ROUTE_PREFIXES = ("", "/api")


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """One proxied endpoint: its template, its method, and its provider (``None``: decided per request)."""

    template: str
    method: str
    service_type: str | None


PROXY_ROUTES = (
    ProxyRoute("/v1/messages", "POST", ANTHROPIC),
    ProxyRoute("/v1/messages/count_tokens", "POST", ANTHROPIC),
    ProxyRoute("/v1/chat/completions", "POST", OPENAI),
    ProxyRoute("/v1/models", "GET", None),
    ProxyRoute("/v1/models/{model_id}", "GET", None),
)


def service_type_for(route: ProxyRoute, headers: Headers) -> str:
    """The provider for a request; /v1/models is both providers' path, told apart by headers.

    Anthropic clients always send ``anthropic-version`` (or at least ``x-api-key``);
    OpenAI clients send a Bearer token.
    """
    if route.service_type is not None:
        return route.service_type
    if "anthropic-version" in headers or "x-api-key" in headers:
        return ANTHROPIC
    return OPENAI


def upstream_base_url(service_type: str, settings: Settings) -> str:
    """The configured base URL of a provider, without a trailing slash."""
    if service_type == ANTHROPIC:
        return settings.upstream.anthropic_base_url
    return settings.upstream.openai_base_url


def error_body(service_type: str, error_type: str, message: str) -> bytes:
    """An error body shaped like the provider's own, so SDKs raise their usual exceptions."""
    if service_type == ANTHROPIC:
        payload: dict = {"type": "error", "error": {"type": error_type, "message": message}}
    else:
        payload = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return json.dumps(payload).encode()


# The provider-side error type for each failure ccproxy reports itself.
LOCAL_ERROR_TYPES = {
    (ANTHROPIC, 502): "api_error",
    (ANTHROPIC, 504): "timeout_error",
    (ANTHROPIC, 413): "request_too_large",
    (ANTHROPIC, 404): "not_found_error",
    (ANTHROPIC, 429): "rate_limit_error",
    (OPENAI, 502): "server_error",
    (OPENAI, 504): "timeout",
    (OPENAI, 413): "invalid_request_error",
    (OPENAI, 404): "invalid_request_error",
    # ccproxy answers 429 itself only when a plugin (a spending budget) refuses a request.
    (OPENAI, 429): "insufficient_quota",
}
