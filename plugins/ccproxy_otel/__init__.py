"""Built-in ccproxy plugin: one OpenTelemetry span per proxied request, sent over OTLP/HTTP.

Loaded when OBSERVABILITY__OTEL_ENABLED is true. Where spans go, and how, is set by the
standard OTEL_EXPORTER_OTLP_* and OTEL_SERVICE_NAME variables; OBSERVABILITY__OTEL_METRICS_ENABLED
adds the GenAI client metrics. Spans follow the OpenTelemetry GenAI semantic conventions and
continue the client's W3C trace. See docs/opentelemetry.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec
from ccproxy_otel.lifecycle import start_exporting, stop_exporting
from ccproxy_otel.settings import OtelSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.runtime.settings import Settings


def _enabled(settings: Settings) -> tuple[bool, str]:
    on = bool(getattr(settings.observability, "otel_enabled", False))
    return on, f"OBSERVABILITY__OTEL_ENABLED={'true' if on else 'false'}"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on with OBSERVABILITY__OTEL_ENABLED=true."""
    return PluginSpec(settings=OtelSettings, section="observability", enabled_when=_enabled)


@hookimpl
def on_startup(app: FastAPI, settings: Settings) -> None:
    """Build the app's tracer (and meter) with their background exporters, and start observing requests."""
    start_exporting(app, settings)


@hookimpl
async def on_shutdown(app: FastAPI) -> None:
    """Stop observing, then send what is still batched (in a thread: it waits on the network)."""
    await stop_exporting(app)
