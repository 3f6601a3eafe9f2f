"""Built-in ccproxy plugin: Prometheus metrics of proxied requests, served on GET /metrics.

Loaded when OBSERVABILITY__METRICS_ENDPOINT_ENABLED is true or OBSERVABILITY__PUSHGATEWAY_URL
is set; the /metrics route exists only with the former. See docs/metrics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl
from ccproxy_metrics.routes import add_metrics_route
from ccproxy_metrics.state import metrics_state, start_observing, stop_observing

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from ccproxy_core.settings import Settings


@hookimpl
def register_routes(app: FastAPI, settings: Settings) -> None:
    """Create the app's registry and, when the endpoint is enabled, add GET /metrics."""
    state = metrics_state(app, settings)
    if settings.observability.metrics_endpoint_enabled:
        add_metrics_route(app, state.registry)


@hookimpl
def get_metrics_registry(app: FastAPI) -> CollectorRegistry:
    """The app's own registry (never prometheus_client's global one)."""
    return metrics_state(app).registry


@hookimpl
def on_startup(app: FastAPI, settings: Settings) -> None:
    """Start counting this app's requests."""
    start_observing(app, settings)


@hookimpl
def on_shutdown(app: FastAPI) -> None:
    """Stop counting; the registry stays readable for a last scrape or push."""
    stop_observing(app)
