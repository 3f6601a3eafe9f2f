"""Built-in ccproxy plugin ``duckdb``: stores every access record in a DuckDB file.

On when OBSERVABILITY__LOGS_COLLECTION_ENABLED=true and OBSERVABILITY__LOG_STORAGE_BACKEND=duckdb.
Readers find the store through the ``get_log_store`` hook, never by importing this package.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core import hookimpl

from .lifecycle import active_store, start_store, stop_store


@hookimpl
async def on_startup(app: Any, settings: Any) -> None:
    """Open the DuckDB file (one clear error line if it cannot be) and start the background writer."""
    await start_store(app, settings)


@hookimpl
def get_log_store(app: Any) -> Any:
    """The store opened for ``app``, or ``None`` before start-up and after shutdown."""
    return active_store(app)


@hookimpl
async def on_shutdown(app: Any) -> None:
    """Write every queued record, then close the file."""
    await stop_store(app)
