"""A plugin whose ``async def on_request_start`` takes SLOW_START_SECONDS (1 s by default): under ``--workers``
the hub runs it for each worker's requests one after the other, so a burst of requests leaves it a backlog."""

import asyncio
import os

from ccproxy_core import hookimpl


@hookimpl
async def on_request_start() -> None:
    # Past ccproxy's time limit on request hooks it is cancelled: it swallows that once and sleeps on, so the
    # backlog lasts as long as it says (a second cancellation, the shutdown's, ends it).
    seconds = float(os.environ.get("SLOW_START_SECONDS", "1"))
    loop = asyncio.get_running_loop()
    until = loop.time() + seconds
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(max(0.0, until - loop.time()))


def admit_request() -> None:
    """Admits every request; with SLOW_START_ADMITS=1 workers ask the hub before forwarding (behind its backlog)."""


if os.environ.get("SLOW_START_ADMITS") == "1":
    admit_request = hookimpl(admit_request)
