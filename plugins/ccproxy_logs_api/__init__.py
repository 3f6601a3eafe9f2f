"""Built-in ccproxy plugin ``logs_api``: the /logs routes and the live /logs/stream.

On when OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true. Stored data comes from whichever plugin
answers the ``get_log_store`` hook; the stream is fed by this plugin's own ``on_request_end``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec, flag

from .lifecycle import publisher_of, start_stream, stop_stream
from .routes import build_router
from .settings import LogsApiSettings

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import AccessRecord
    from ccproxy_core.plugin_host.host import Ccproxy

SWITCH = "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on with its flag; starts after the log store it reads."""
    return PluginSpec(
        settings=LogsApiSettings,
        section="observability",
        enabled_when=flag(SWITCH),
        own_paths=("/logs",),
        switch=SWITCH,
        starts_after=("duckdb",),
    )


@hookimpl
def register_routes(app: Any) -> None:
    """Add GET /logs/status|query|analytics|entries|stream and POST /logs/reset."""
    app.include_router(build_router())


@hookimpl
def on_startup(ccproxy: Ccproxy) -> None:
    """Start the stream hub that /logs/stream reads."""
    start_stream(ccproxy)


@hookimpl
def on_request_end(record: AccessRecord, ccproxy: Ccproxy) -> None:
    """Publish the finished request to /logs/stream subscribers; never blocks."""
    publish = publisher_of(ccproxy)
    if publish is not None:
        publish(record)


@hookimpl
def on_shutdown(ccproxy: Ccproxy) -> None:
    """End open streams."""
    stop_stream(ccproxy)
