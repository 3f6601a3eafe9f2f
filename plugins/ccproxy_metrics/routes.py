"""GET /metrics: the app's registry in the format the scraper asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, Request, Response
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ccproxy_core.security.auth import require_auth_token

if TYPE_CHECKING:
    from fastapi import FastAPI

METRICS_PATH = "/metrics"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Prometheus text format, or OpenMetrics when the Accept header asks for it.",
        "content": {"text/plain": {}, "application/openmetrics-text": {}},
    },
    401: {"description": "SECURITY__AUTH_TOKEN is set and the request did not carry it."},
}


def add_metrics_route(app: FastAPI, registry: CollectorRegistry) -> None:
    """Serve ``registry`` on GET /metrics, behind the optional auth token.

    An explicit route rather than a mounted ASGI app: a mount answers /metrics with a
    redirect to /metrics/, which some scrapers do not follow.
    """

    # A plain def: FastAPI runs it in a worker thread, so rendering a large
    # exposition never holds up the event loop that streams proxied responses.
    def serve_metrics(request: Request) -> Response:
        """The app's metrics, as Prometheus text or (when asked for) OpenMetrics."""
        return render_exposition(registry, request.headers.get("accept"))

    app.add_api_route(
        METRICS_PATH,
        serve_metrics,
        methods=["GET"],
        dependencies=[Depends(require_auth_token)],
        response_class=Response,
        responses=_RESPONSES,
        summary="Prometheus metrics",
        tags=["observability"],
    )


def render_exposition(registry: CollectorRegistry, accept: str | None) -> Response:
    """The exposition of ``registry`` in the format ``accept`` negotiates."""
    encoder, content_type = choose_encoder(accept or "")
    return Response(content=encoder(registry), headers={"content-type": content_type})
