"""ASGI responses that send the provider's answer back unchanged and finish the exchange.

Both subclass Starlette's ``Response`` only so FastAPI returns them as they are; they
send raw header lists (a provider may repeat a header) and call ``on_done`` exactly once,
after the last byte went out or the exchange was cut short.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ccproxy_core.exchange import Exchange
from ccproxy_core.usage import Usage

log = logging.getLogger("ccproxy.proxy")

OnDone = Callable[[Exchange], Awaitable[None]]
OVERHEAD_HEADER = b"x-ccproxy-overhead-ms"


def _overhead_header(exchange: Exchange, now: float) -> tuple[bytes, bytes]:
    return OVERHEAD_HEADER, f"{exchange.overhead_ms(now):.3f}".encode()


class BufferedProxyResponse(Response):
    """A whole body (JSON answer or local error) with the headers given."""

    def __init__(self, exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes, on_done: OnDone):
        self.exchange, self.status_code, self.body, self._on_done = exchange, status, body, on_done
        self.raw_headers = [*headers, (b"content-length", str(len(body)).encode())]
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        now = time.perf_counter()
        self.exchange.response_started_at = now
        self.exchange.response_bytes = len(self.body)
        try:
            headers = [*self.raw_headers, _overhead_header(self.exchange, now)]
            await send({"type": "http.response.start", "status": self.status_code, "headers": headers})
            await send({"type": "http.response.body", "body": self.body, "more_body": False})
        finally:
            await self._on_done(self.exchange)


class StreamingProxyResponse(Response):
    """A body passed through chunk by chunk as it arrives, never buffered (server-sent
    events, files, batch results).

    Usage is parsed beside the pass-through by ``parser`` (none: the body has no usage). A client that goes away closes the
    upstream request; an upstream that breaks off cuts the client's stream as well.
    """

    def __init__(self, exchange: Exchange, upstream: aiohttp.ClientResponse, headers: list[tuple[bytes, bytes]], on_done: OnDone,
                 parser: UsageParser | None = None):
        self.exchange, self.upstream, self._on_done, self.parser = exchange, upstream, on_done, parser
        self.status_code = upstream.status
        self.raw_headers = headers
        self.background = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The stream is pumped in this task; a watcher task cancels it when the client goes
        # away (uvicorn drops what is sent after a disconnect, so the pump alone would not notice).
        task = asyncio.current_task()
        client_left = False

        def on_disconnect(_: asyncio.Future) -> None:
            nonlocal client_left
            if pumping:
                client_left = True
                task.cancel()

        pumping = True
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        watcher.add_done_callback(on_disconnect)
        try:
            completed = await self._pump(send)
        except asyncio.CancelledError:
            if not client_left or task.uncancel() > 0:  # cancelled from outside too: let it be
                raise
            self.exchange.fail(499, "client_disconnected", "client closed the connection mid-stream")
            completed = False
        finally:
            pumping = False
            watcher.remove_done_callback(on_disconnect)
            watcher.cancel()
            self.upstream.close()
            self.exchange.upstream_done_at = self.exchange.upstream_done_at or time.perf_counter()
            await self._on_done(self.exchange)
        if not completed and self.exchange.status_code != 499:
            # Returning without finishing makes the server cut the connection, as the provider did.
            log.warning("upstream stream broke off: %s", self.exchange.error_message)

    async def _pump(self, send: Send) -> bool:
        exchange, parser = self.exchange, self.parser or _NoUsage()
        now = time.perf_counter()
        exchange.response_started_at = now
        await send({"type": "http.response.start", "status": self.status_code, "headers": [*self.raw_headers, _overhead_header(exchange, now)]})
        try:
            async for chunk in self.upstream.content.iter_any():
                if exchange.first_byte_at is None:
                    exchange.first_byte_at = time.perf_counter()
                # Send first, so the chunk travels while its usage is parsed (in ``finally``:
                # a chunk whose sending was cut short by a disconnect still counts).
                try:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                finally:
                    parser.feed(chunk)
                    exchange.response_bytes += len(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            exchange.usage = parser.result()
            timed_out = isinstance(exc, asyncio.TimeoutError)
            exchange.fail(exchange.status_code, "upstream_timeout" if timed_out else "upstream_stream_aborted", _describe(exc))
            return False
        finally:
            exchange.upstream_done_at = time.perf_counter()
            exchange.usage = parser.result()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True


class UsageParser(Protocol):
    """Reads usage from a body while it passes through (``StreamUsageParser``, ``BatchResultsParser``)."""

    def feed(self, chunk: bytes) -> None: ...

    def result(self) -> Usage: ...


class _NoUsage:
    """A body with no usage in it (a file's content)."""

    def feed(self, chunk: bytes) -> None:
        pass

    def result(self) -> Usage:
        return Usage()


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
