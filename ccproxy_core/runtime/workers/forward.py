"""Passing a request a worker does not serve itself on to the hub, streamed both ways.

/metrics, /logs (its event stream included), /dashboard and every route a plugin registers
live in the hub. The client's headers go through unchanged, so the hub applies its token,
browser and CORS checks exactly as a single process does; the client's address and scheme
go in one header that only the hub's private socket believes, and a client's own copy of
that header is dropped.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
from multidict import CIMultiDict
from starlette.types import Receive, Scope, Send
from yarl import URL

from ccproxy_core.forwarding.upstream import auto_headers_to_skip
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

log = logging.getLogger("ccproxy.workers")
_failure_log = RateLimitedLog(log)

WORKER_CLIENT_HEADER = b"x-ccproxy-worker-client"
"""``<scheme> <client address> <client port> <server address> <server port>``, each percent-encoded, set by a worker, and
``no-host`` after them when the client sent no Host header (HTTP/1.0 may not): the ``Host`` aiohttp
adds to reach the hub is then not the client's, and the hub leaves it out.

Believed only on the hub's socket. The server's address is the one the client connected to,
which the hub, listening on a unix socket, cannot know itself.
"""
NO_HOST = "no-host"
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"upgrade",
        b"proxy-connection",
        b"trailer",
        WORKER_CLIENT_HEADER,
    }
)
# The worker's own server adds these to every answer.
_SET_BY_SERVER = frozenset({b"date", b"server", b"connection", b"keep-alive", b"transfer-encoding"})
_HUB_KEEPALIVE_SECONDS = 30.0


class HubForwarder:
    """A pure ASGI app that answers every request by asking the hub over its unix socket."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        connector = aiohttp.UnixConnector(self.socket_path, limit=0, keepalive_timeout=_HUB_KEEPALIVE_SECONDS)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            # One session relays every client's requests: a cookie the hub sets for one client
            # (the dashboard's session) must go back to that client only, never to the next one.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _forwarded_headers(scope)
        url = "http://ccproxy-hub" + _raw_path(scope)
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        has_body = "content-length" in headers or "transfer-encoding" in _raw_names(scope)
        assert self._session is not None, "open() first"
        try:
            response = await self._session.request(
                scope["method"],
                URL(url, encoded=True),
                headers=headers,
                allow_redirects=False,
                data=_request_body(receive) if has_body else None,
                skip_auto_headers=auto_headers_to_skip(headers),
            )
        except (aiohttp.ClientError, OSError) as exc:
            _failure_log.log("the hub did not answer %s %s: %s", scope["method"], scope["path"], exc)
            return await _hub_unavailable(send)
        try:
            await _relay(response, send, receive)
        finally:
            response.close()


def _forwarded_headers(scope: Scope) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in scope["headers"]:
        if name not in _HOP_BY_HOP:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
    client = scope.get("client") or ("", 0)
    server = scope.get("server") or ("", 0)
    sent_host = any(name == b"host" for name, _ in scope["headers"])
    # Percent-encoded: a trusted proxy's X-Forwarded-For may hand uvicorn any text as the client's
    # address, spaces too, which must not pass for the fields after it (a no-host would drop the Host checked).
    fields = (scope.get("scheme", "http"), client[0], client[1], server[0], server[1] or 0)
    headers[WORKER_CLIENT_HEADER.decode()] = " ".join(quote(str(field), safe="") for field in fields) + (
        "" if sent_host else f" {NO_HOST}"
    )
    return headers


def _raw_names(scope: Scope) -> set[bytes]:
    return {name for name, _ in scope["headers"]}


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    return raw.decode("latin-1") if raw else scope["path"]


async def _request_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        if body := message.get("body"):
            yield body
        if not message.get("more_body"):
            return


async def _relay(response: aiohttp.ClientResponse, send: Send, receive: Receive) -> None:
    """Send the hub's answer on as it arrives; stop asking the hub when the client goes away."""
    headers = [(name, value) for name, value in response.raw_headers if name.lower() not in _SET_BY_SERVER]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    pump = asyncio.ensure_future(_pump(response, send))
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    try:
        await asyncio.wait((pump, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not pump.done():
            pump.cancel()  # the client left: the hub's stream closes with this request
    if pump.done() and not pump.cancelled() and pump.exception() is not None:
        _failure_log.log("the hub broke off its answer: %s", pump.exception())


async def _pump(response: aiohttp.ClientResponse, send: Send) -> None:
    async for chunk in response.content.iter_any():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _hub_unavailable(send: Send) -> None:
    body = json.dumps({"detail": "ccproxy's hub process is not answering; try again shortly"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
