"""Built-in ccproxy plugin ``logs_api``: the /logs routes and the live /logs/stream.

On when OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true. Stored data comes from whichever plugin
answers the ``get_log_store`` hook; the stream is fed by this plugin's own ``on_request_end``.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core import hookimpl

from .lifecycle import start_stream, stop_stream
from .routes import build_router


@hookimpl
def register_routes(app: Any) -> None:
    """Add GET /logs/status|query|analytics|entries|stream and POST /logs/reset."""
    app.include_router(build_router())


@hookimpl
async def on_startup(app: Any, settings: Any) -> None:
    """Start the stream hub and observe finished requests for it."""
    start_stream(app, settings)


@hookimpl
async def on_shutdown(app: Any) -> None:
    """Stop observing and end open streams."""
    stop_stream(app)
