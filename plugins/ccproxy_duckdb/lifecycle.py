"""Start and stop the DuckDB store of one app; it lives in the app's ``ccproxy.state("duckdb")``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccproxy_core.plugin_host.background import run_in_background_thread

from .settings import DuckDBSettings
from .store import DuckDBLogStore, open_database

if TYPE_CHECKING:
    from ccproxy_core.plugin_host.host import Ccproxy

PLUGIN_NAME = "duckdb"


def active_store(ccproxy: Ccproxy) -> DuckDBLogStore | None:
    """The store opened for this app, if start-up has opened one."""
    return getattr(ccproxy.state(PLUGIN_NAME), "store", None)


async def start_store(ccproxy: Ccproxy) -> None:
    """Open the file (in a thread: it may migrate) and start the writer.

    The file is opened in a thread below the event loop's priority, so DuckDB's own workers,
    started from it, run there too; the writer keeps normal priority so records keep up.
    """
    settings = ccproxy.settings_of(DuckDBSettings)
    # A stop asked for while the file migrates lets the migration end (or roll back) before the process exits.
    database = await run_in_background_thread("ccproxy-duckdb-open", open_database, settings, finish_before_exit=True)
    ccproxy.state(PLUGIN_NAME).store = await asyncio.to_thread(DuckDBLogStore.start, database, settings)


async def stop_store(ccproxy: Ccproxy) -> None:
    """Write everything queued, close the file."""
    store = active_store(ccproxy)
    if store is not None:
        ccproxy.state(PLUGIN_NAME).store = None
        await asyncio.to_thread(store.close)
