"""Start and stop the ClickHouse store of one app; it lives in the app's ``ccproxy.state("clickhouse")``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .settings import ClickHouseSettings
from .store import ClickHouseLogStore

if TYPE_CHECKING:
    from ccproxy_core.plugin_host.host import Ccproxy

PLUGIN_NAME = "clickhouse"


def active_store(ccproxy: Ccproxy) -> ClickHouseLogStore | None:
    """The store opened for this app, if start-up has opened one."""
    return getattr(ccproxy.state(PLUGIN_NAME), "store", None)


async def start_store(ccproxy: Ccproxy) -> None:
    """Connect and prepare the tables (in a thread: it is network work) and start the writer."""
    ccproxy.state(PLUGIN_NAME).store = await asyncio.to_thread(
        ClickHouseLogStore.open, ccproxy.settings_of(ClickHouseSettings)
    )


async def stop_store(ccproxy: Ccproxy) -> None:
    """Write everything queued, disconnect."""
    store = active_store(ccproxy)
    if store is not None:
        ccproxy.state(PLUGIN_NAME).store = None
        # Within this plugin's share of the shutdown: records it must drop are then counted before the
        # plugins after it stop (the Pushgateway's last push carries them).
        await asyncio.to_thread(store.close, ccproxy.seconds_to_stop())
