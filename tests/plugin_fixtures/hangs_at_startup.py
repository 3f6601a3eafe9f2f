"""A plugin whose async on_startup never returns (it waits for a connection that never comes)."""

import asyncio
import logging

from ccproxy_core import hookimpl

log = logging.getLogger("ccproxy.plugins.hangs_at_startup")


@hookimpl
async def on_startup():
    log.warning("hangs_at_startup: waiting for what never comes")
    await asyncio.Event().wait()
