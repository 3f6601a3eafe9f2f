"""What one worker process serves: the proxy routes and /health itself, everything else at the hub.

A worker starts no plugin (no log store is opened here). Its proxy reports each request to
the hub over the worker's event channel, which stands where the request hooks stand in a
single process. Answers carry ``x-ccproxy-worker`` (the worker's pid), so an operator can
tell which process served a request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from ccproxy_core import __version__
from ccproxy_core.forwarding.exchange_response import ExchangeResponse
from ccproxy_core.forwarding.proxy import Proxy
from ccproxy_core.forwarding.route_table import api_path
from ccproxy_core.forwarding.upstream import close_pools, open_pools
from ccproxy_core.forwarding.websocket_proxy import WebSocketProxy
from ccproxy_core.providers.openai import WEBSOCKET_READERS
from ccproxy_core.runtime.access_log import AccessLogger
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.runtime.workers.channel import DRAIN_MARGIN_SECONDS, FLUSH_EARLY_SECONDS, HubChannel
from ccproxy_core.runtime.workers.forward import HubForwarder
from ccproxy_core.security.browser_guard import BrowserGuard
from ccproxy_core.security.cors import CorsPolicy

log = logging.getLogger("ccproxy.workers")

WORKER_HEADER = b"x-ccproxy-worker"
CUT_REQUESTS_WAIT_SECONDS = 5.0
"""At shutdown, how long requests the server cut may take to unwind before the channel to the hub closes."""


class WorkerApp:
    """A pure ASGI app: proxy routes and /health served here, other paths forwarded to the hub."""

    def __init__(self, settings: Settings, channel: HubChannel, forwarder: HubForwarder) -> None:
        self.settings, self.channel, self.forwarder = settings, channel, forwarder
        self.proxy = Proxy(settings, channel, AccessLogger(settings.logging.access_log))  # type: ignore[arg-type]
        self.websockets = WebSocketProxy(self.proxy)
        self.cors = CorsPolicy(settings.security.allowed_origins)
        self.refusals: Counter[str] = Counter()
        self.local = BrowserGuard(self._serve_here, settings=settings, refusals=self.refusals)
        self.pid_header = (WORKER_HEADER, str(os.getpid()).encode())
        # The server sets ``state.draining`` when it starts shutting down (see serve.Server).
        self.state = SimpleNamespace(draining=Draining())
        self.requests_running: Callable[[], Iterable[asyncio.Task[Any]]] = tuple
        """The server's request tasks (set by ``worker_main``): those cut at its shutdown timeout end after it."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            return await self._lifespan(receive, send)
        path = scope["path"]
        here = path == "/health" or (
            api_path(path) is not None if kind == "http" else api_path(path) in WEBSOCKET_READERS
        )
        if here:
            await self.local(scope, receive, self._marked(send))
        elif kind == "http":
            await self.forwarder(scope, receive, send)
        else:
            await send({"type": "websocket.close", "code": 1008})

    def _marked(self, send: Send) -> Send:
        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.pid_header]
            await send(message)

        return send_marked

    async def _serve_here(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            return await self.websockets.handle(scope, receive, send)
        if scope["path"] == "/health":
            return await self._health(send)
        if self.cors.is_preflight(scope):
            return await self.cors.answer_preflight(scope, send)
        route = self.proxy.route_for(scope["method"], scope["path"])
        assert route is not None, "only provider API paths are served here"
        await ExchangeResponse(self.proxy, route)(scope, receive, send)

    async def _health(self, send: Send) -> None:
        body = json.dumps(
            {"status": "ok", "version": __version__, "plugins": self.channel.hub_plugins, "worker": os.getpid()}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    await send({"type": "lifespan.startup.failed", "message": f"worker failed to start: {exc!r}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start(self) -> None:
        self.proxy.pools = open_pools(self.settings)
        await self.channel.open()
        await self.forwarder.open()

    async def _stop(self) -> None:
        # uvicorn cancels the requests still running at its shutdown timeout and stops the app at once: the
        # requests it cut have yet to unwind and send their records, which the channel must still carry.
        if cut := set(self.requests_running()):
            await asyncio.wait(cut, timeout=CUT_REQUESTS_WAIT_SECONDS)
        # The supervisor kills a worker DRAIN_MARGIN_SECONDS after the shutdown timeout; until shortly before
        # that, the channel waits for a hub that is behind (slow hooks) to take every event.
        began = self.state.draining.since or time.monotonic()
        allowed = self.settings.server.shutdown_timeout_seconds + DRAIN_MARGIN_SECONDS - FLUSH_EARLY_SECONDS
        await self.channel.close(flush_within=max(1.0, began + allowed - time.monotonic()))
        await self.forwarder.close()
        await close_pools(self.proxy.pools)


class Draining(threading.Event):
    """``state.draining``, which also knows when it was first set (the shutdown began)."""

    since: float | None = None

    def set(self) -> None:
        if self.since is None:
            self.since = time.monotonic()
        super().set()
