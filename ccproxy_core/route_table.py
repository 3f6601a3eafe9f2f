"""Every provider route ccproxy knows by name, and the bounded endpoint of any other API path.

A route names its provider (``None``: the path is both providers', told apart per request
by headers) and how its answer is read: ``usage`` (a metered call: tokens and cost),
``responses`` (OpenAI's Responses API objects and events), ``batch_results`` (JSON Lines of
finished batch requests, accounted at the batch price), ``free`` (metered by the provider
at no charge) or ``none`` (management calls whose bodies may repeat a past answer's usage
that must not be counted twice: stored responses, files, batch objects).

A path under ``/v1/`` that no route names is still forwarded, to the provider its headers
point to, and recorded under ``/v1/<resource>/*`` for a resource either provider documents,
else under ``/v1/*``: the ``endpoint`` label stays bounded whatever paths clients invent.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import Headers

ANTHROPIC = "anthropic"
OPENAI = "openai"

USAGE = "usage"
RESPONSES = "responses"
BATCH_RESULTS = "batch_results"
FREE = "free"
NONE = "none"

API_PREFIX = "/v1/"
ROUTE_PREFIXES = ("", "/api")
"""Clients configured for ccproxy's usual base URL (http://host:port/api) reach the same routes."""


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One provider endpoint: its template, method, provider (``None``: by headers) and reader."""

    template: str
    method: str
    service_type: str | None
    reader: str = NONE


def _routes(service_type: str | None, reader: str, *specs: str) -> tuple[ApiRoute, ...]:
    """``"POST /v1/messages"`` specs for one provider and reader."""
    return tuple(ApiRoute(spec.split(" ", 1)[1], spec.split(" ", 1)[0], service_type, reader) for spec in specs)


ANTHROPIC_ROUTES = (
    *_routes(ANTHROPIC, USAGE, "POST /v1/messages", "POST /v1/complete"),
    *_routes(ANTHROPIC, NONE,
             "POST /v1/messages/count_tokens",
             "POST /v1/messages/batches", "GET /v1/messages/batches",
             "GET /v1/messages/batches/{batch_id}", "DELETE /v1/messages/batches/{batch_id}",
             "POST /v1/messages/batches/{batch_id}/cancel"),
    *_routes(ANTHROPIC, BATCH_RESULTS, "GET /v1/messages/batches/{batch_id}/results"),
)

OPENAI_ROUTES = (
    *_routes(OPENAI, USAGE,
             "POST /v1/chat/completions", "POST /v1/completions", "POST /v1/embeddings",
             "POST /v1/audio/transcriptions", "POST /v1/audio/translations", "POST /v1/audio/speech",
             "POST /v1/images/generations", "POST /v1/images/edits", "POST /v1/images/variations"),
    *_routes(OPENAI, FREE, "POST /v1/moderations"),
    *_routes(OPENAI, RESPONSES, "POST /v1/responses", "POST /v1/responses/compact"),
    *_routes(OPENAI, NONE,
             "GET /v1/responses/{response_id}", "DELETE /v1/responses/{response_id}",
             "POST /v1/responses/{response_id}/cancel", "GET /v1/responses/{response_id}/input_items",
             "POST /v1/responses/input_tokens",
             "GET /v1/chat/completions", "GET /v1/chat/completions/{completion_id}",
             "POST /v1/chat/completions/{completion_id}", "DELETE /v1/chat/completions/{completion_id}",
             "GET /v1/chat/completions/{completion_id}/messages",
             "POST /v1/batches", "GET /v1/batches", "GET /v1/batches/{batch_id}",
             "POST /v1/batches/{batch_id}/cancel",
             "POST /v1/uploads", "POST /v1/uploads/{upload_id}/parts",
             "POST /v1/uploads/{upload_id}/complete", "POST /v1/uploads/{upload_id}/cancel"),
)

SHARED_ROUTES = (
    *_routes(None, NONE,
             "GET /v1/models", "GET /v1/models/{model_id}",
             "POST /v1/files", "GET /v1/files", "GET /v1/files/{file_id}", "DELETE /v1/files/{file_id}"),
    # OpenAI batch output files are fetched here; other file contents have no usage lines.
    *_routes(None, BATCH_RESULTS, "GET /v1/files/{file_id}/content"),
)

API_ROUTES: tuple[ApiRoute, ...] = (*ANTHROPIC_ROUTES, *OPENAI_ROUTES, *SHARED_ROUTES)

WEBSOCKET_ROUTES: dict[str, str] = {"/v1/responses": RESPONSES, "/v1/realtime": "realtime"}
"""Paths where a WebSocket upgrade is forwarded to OpenAI, and the event reader for each."""

KNOWN_RESOURCES = frozenset(
    {template.split("/")[2] for template in (route.template for route in API_ROUTES)}
    | {
        # Further resources of the two APIs, forwarded under their own bounded endpoint.
        "assistants", "threads", "vector_stores", "fine_tuning", "containers", "conversations",
        "evals", "videos", "realtime", "organization", "skills", "chatkit", "agents", "environments",
        "sessions", "vaults",
    }
)


class RouteTable:
    """Finds the route of a method and path in a few dictionary lookups."""

    def __init__(self, routes: tuple[ApiRoute, ...] = API_ROUTES) -> None:
        self._exact: dict[tuple[str, str], ApiRoute] = {}
        self._templated: dict[tuple[str, int], list[tuple[tuple[str | None, ...], ApiRoute]]] = {}
        for route in routes:
            if "{" not in route.template:
                self._exact[(route.method, route.template)] = route
                continue
            parts = tuple(None if part.startswith("{") else part for part in route.template.split("/"))
            self._templated.setdefault((route.method, len(parts)), []).append((parts, route))

    def match(self, method: str, path: str) -> ApiRoute | None:
        """The route serving ``method path`` (``path`` without the ``/api`` prefix), else ``None``.

        ``HEAD`` is served by the ``GET`` route of the same path.
        """
        if method == "HEAD":
            method = "GET"
        route = self._exact.get((method, path))
        if route is not None:
            return route
        parts = path.split("/")
        for pattern, candidate in self._templated.get((method, len(parts)), ()):
            if all(want is None and part or want == part for want, part in zip(pattern, parts, strict=True)):
                return candidate
        return None


def api_path(path: str) -> str | None:
    """``path`` without the ``/api`` prefix when it is under a provider's ``/v1/``, else ``None``."""
    if path.startswith("/api/"):
        path = path[4:]
    return path if path.startswith(API_PREFIX) else None


def fallback_endpoint(path: str) -> str:
    """The bounded endpoint of an API path no route names: ``/v1/<resource>/*`` or ``/v1/*``."""
    resource = path[len(API_PREFIX):].split("/", 1)[0]
    return f"/v1/{resource}/*" if resource in KNOWN_RESOURCES else "/v1/*"


def service_type_from_headers(headers: Headers) -> str:
    """The provider a request is meant for when its path is both providers'.

    Anthropic clients always send ``anthropic-version`` (or at least ``x-api-key``);
    OpenAI clients send a Bearer token.
    """
    if "anthropic-version" in headers or "x-api-key" in headers:
        return ANTHROPIC
    return OPENAI
