"""Built-in ccproxy plugin ``clickhouse``: stores every access record in ClickHouse, one server or a cluster.

On when OBSERVABILITY__LOGS_COLLECTION_ENABLED=true and OBSERVABILITY__LOG_STORAGE_BACKEND=clickhouse;
reached through OBSERVABILITY__CLICKHOUSE_URL (and OBSERVABILITY__CLICKHOUSE_CLUSTER for a
Distributed table). Readers find the store through the ``get_log_store`` hook, as with DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.plugin_host.plugin_spec import PluginSpec

from .lifecycle import active_store, start_store, stop_store
from .settings import ClickHouseSettings

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import AccessRecord
    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.runtime.settings import Settings


def _enabled(settings: Settings) -> tuple[bool, str]:
    return section_values(settings, ClickHouseSettings).store_enabled("clickhouse")


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on when log collection is on with the clickhouse backend."""
    return PluginSpec(settings=ClickHouseSettings, section="observability", enabled_when=_enabled)


@hookimpl
async def on_startup(ccproxy: Ccproxy) -> None:
    """Connect, create the tables that are missing, and start the background writer."""
    await start_store(ccproxy)


@hookimpl
def get_log_store(app: Any) -> Any:
    """The store opened for this app, or ``None`` before start-up and after shutdown."""
    return active_store(host_of(app))


@hookimpl
def on_request_end(record: AccessRecord, ccproxy: Ccproxy) -> None:
    """Queue the record; never blocks (a full queue drops it and counts the drop)."""
    store = active_store(ccproxy)
    if store is not None:
        store.submit(record)


@hookimpl
async def on_shutdown(ccproxy: Ccproxy) -> None:
    """Write every queued record (retrying for a while if ClickHouse is away), then disconnect."""
    await stop_store(ccproxy)
