"""Start and stop the ClickHouse store of one app, and the observer that feeds it."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from ccproxy_core import hookimpl
from ccproxy_core.record import AccessRecord
from ccproxy_core.settings import Settings

from .store import ClickHouseLogStore

STATE_ATTRIBUTE = "ccproxy_clickhouse"
OBSERVER_NAME = "clickhouse.observer"


class StoreObserver:
    """The per-app plugin object whose ``on_request_end`` queues each record for the store."""

    def __init__(self, store: ClickHouseLogStore) -> None:
        self._submit = store.submit

    @hookimpl
    def on_request_end(self, record: AccessRecord) -> None:
        """Queue the record; never blocks (a full queue drops it and counts the drop)."""
        self._submit(record)


def active_store(app: FastAPI) -> ClickHouseLogStore | None:
    """The store opened for ``app``, if start-up has opened one."""
    return getattr(app.state, STATE_ATTRIBUTE, None)


async def start_store(app: FastAPI, settings: Settings) -> None:
    """Connect and prepare the tables (in a thread: it is network work), start the writer, observe requests."""
    store = await asyncio.to_thread(ClickHouseLogStore.open, settings.observability)
    setattr(app.state, STATE_ATTRIBUTE, store)
    app.state.plugin_manager.register(StoreObserver(store), name=OBSERVER_NAME)


async def stop_store(app: FastAPI) -> None:
    """Stop observing, write everything queued, disconnect."""
    plugin_manager = app.state.plugin_manager
    if plugin_manager.get_plugin(OBSERVER_NAME) is not None:
        plugin_manager.unregister(name=OBSERVER_NAME)
    store = active_store(app)
    if store is not None:
        setattr(app.state, STATE_ATTRIBUTE, None)
        await asyncio.to_thread(store.close)
