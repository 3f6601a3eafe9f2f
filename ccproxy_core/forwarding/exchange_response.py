"""The ASGI response that runs one proxied exchange."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

if TYPE_CHECKING:
    from ccproxy_core.forwarding.proxy import Proxy
    from ccproxy_core.providers import ProxyRoute


class ExchangeResponse(Response):
    """The ASGI response of a proxied request: the whole exchange runs when it is sent.

    It subclasses Starlette's ``Response`` only so FastAPI returns it as it is.
    """

    def __init__(self, proxy: Proxy, route: ProxyRoute) -> None:
        self.proxy, self.route = proxy, route
        self.status_code, self.background, self.raw_headers = 200, None, []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        self.proxy.requests_in_flight += 1
        if task is not None:
            self.proxy.running.add(task)
        try:
            await self.proxy.serve(self.route, scope, receive, send)
        finally:  # after on_request_end: a draining server knows when the last record is out
            self.proxy.requests_in_flight -= 1
            self.proxy.running.discard(task)


def cut_running_requests(proxy: Proxy) -> None:
    """Cancel every proxied request still running: the server's shutdown time is nearly out. Each is
    recorded as cut (``proxy_cancelled``, a 503 if nothing was sent yet) while the server still serves,
    so followers of ``/logs/stream`` get its record before their stream ends."""
    for task in list(proxy.running):
        task.cancel("the server's shutdown time ran out")
