"""ccproxy plugin ``clickhouse``: stores every access record in ClickHouse, one server or a cluster.

On when OBSERVABILITY__LOGS_COLLECTION_ENABLED=true and OBSERVABILITY__LOG_STORAGE_BACKEND=clickhouse;
reached through OBSERVABILITY__CLICKHOUSE_URL (and OBSERVABILITY__CLICKHOUSE_CLUSTER for a
Distributed table). Readers find the store through the ``get_log_store`` hook, as with DuckDB.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core import hookimpl

from .lifecycle import active_store, start_store, stop_store


@hookimpl
async def on_startup(app: Any, settings: Any) -> None:
    """Connect, create the tables that are missing, and start the background writer."""
    await start_store(app, settings)


@hookimpl
def get_log_store(app: Any) -> Any:
    """The store opened for ``app``, or ``None`` before start-up and after shutdown."""
    return active_store(app)


@hookimpl
async def on_shutdown(app: Any) -> None:
    """Write every queued record (retrying for a while if ClickHouse is away), then disconnect."""
    await stop_store(app)
