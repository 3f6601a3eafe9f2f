"""A plugin whose ``async def on_request_start`` takes SLOW_START_SECONDS (1 s by default): under ``--workers``
the hub runs it for each worker's requests one after the other, so a burst of requests leaves it a backlog."""

import asyncio
import os

from ccproxy_core import hookimpl


@hookimpl
async def on_request_start() -> None:
    await asyncio.sleep(float(os.environ.get("SLOW_START_SECONDS", "1")))


def admit_request() -> None:
    """Admits every request; with SLOW_START_ADMITS=1 workers ask the hub before forwarding (behind its backlog)."""


if os.environ.get("SLOW_START_ADMITS") == "1":
    admit_request = hookimpl(admit_request)
