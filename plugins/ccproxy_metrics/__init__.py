"""Built-in ccproxy plugin: Prometheus metrics of proxied requests, served on GET /metrics.

Loaded when OBSERVABILITY__METRICS_ENDPOINT_ENABLED is true or OBSERVABILITY__PUSHGATEWAY_URL
is set; the /metrics route exists only with the former. See docs/metrics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.plugin_host.plugin_spec import PluginSpec, setting_value
from ccproxy_metrics.routes import add_metrics_route
from ccproxy_metrics.settings import MetricsSettings
from ccproxy_metrics.state import metrics_state, observer_of, start_observing, stop_observing

if TYPE_CHECKING:
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from ccproxy_core.accounting.record import AccessRecord, RequestContext
    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.runtime.settings import Settings

SWITCH = "OBSERVABILITY__METRICS_ENDPOINT_ENABLED"


def _enabled(settings: Settings) -> tuple[bool, str]:
    if setting_value(settings, SWITCH):
        return True, f"{SWITCH}=true"
    if setting_value(settings, "OBSERVABILITY__PUSHGATEWAY_URL"):
        return True, "needed by OBSERVABILITY__PUSHGATEWAY_URL"
    return False, f"{SWITCH}=false"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on for /metrics or for the pushgateway plugin."""
    return PluginSpec(
        settings=MetricsSettings, section="observability", enabled_when=_enabled, own_paths=("/metrics",), switch=SWITCH
    )


@hookimpl
def register_routes(app: FastAPI, settings: Settings) -> None:
    """Create the app's registry and, when the endpoint is enabled, add GET /metrics."""
    state = metrics_state(app, settings)
    if section_values(settings, MetricsSettings).metrics_endpoint_enabled:
        add_metrics_route(app, state.registry)


@hookimpl
def get_metrics_registry(app: FastAPI) -> CollectorRegistry:
    """The app's own registry (never prometheus_client's global one)."""
    return metrics_state(app).registry


@hookimpl
def on_startup(ccproxy: Ccproxy) -> None:
    """Start counting this app's requests."""
    start_observing(ccproxy)


@hookimpl
def on_request_start(context: RequestContext, ccproxy: Ccproxy) -> None:
    """Count the request as in flight."""
    observer = observer_of(ccproxy)
    if observer is not None:
        observer.on_request_start(context)


@hookimpl
def on_request_end(context: RequestContext, record: AccessRecord, ccproxy: Ccproxy) -> None:
    """Count the finished request in every family."""
    observer = observer_of(ccproxy)
    if observer is not None:
        observer.on_request_end(context, record)


@hookimpl
def on_shutdown(ccproxy: Ccproxy) -> None:
    """Stop counting; the registry stays readable for a last scrape or push."""
    stop_observing(ccproxy)
