"""A WebSocket upgrade the provider refused, or that could not reach it: the client's answer, and its record.

The record is one, whatever happens: with the provider's status and body when it answered the
upgrade, with ccproxy's own error when it could not be asked, and as a 499 when the client had
gone by the time the answer came (a client gives up on a slow handshake). It names the model of
the upgrade's query and starts when the upgrade arrived.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
from starlette.types import Receive, Scope, Send

from ccproxy_core.accounting.usage import usage_from_json
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.response_headers import CCPROXY_REQUEST_ID_HEADER, read_response_headers, returned_headers
from ccproxy_core.forwarding.websocket_upgrade import UpgradeRefused
from ccproxy_core.providers import OPENAI

if TYPE_CHECKING:
    from ccproxy_core.forwarding.websocket_proxy import _Socket


async def refuse(
    socket: _Socket,
    send: Send,
    status: int,
    error_type: str,
    message: str,
    started: float,
    upstream_status: int | None = None,
) -> None:
    """The provider refused the upgrade (or could not be reached, or answered with no handshake, whose
    ``upstream_status`` is the one it sent): tell the client, record it."""
    exchange = await _refused_exchange(socket, started)
    if upstream_status is None and error_type.startswith("http_"):
        upstream_status = status
    exchange.upstream_status = upstream_status
    exchange.note_failure(error_type, message[:1000], status)
    provider = exchange.provider
    body = provider.error_body(provider.local_error_type(status), message, exchange.context.request_id)
    headers = [
        (CCPROXY_REQUEST_ID_HEADER, exchange.context.request_id.encode()),
        (b"content-type", b"application/json"),
    ]
    await _answer(socket, send, exchange, status, headers, body)


async def pass_refusal(socket: _Socket, send: Send, refusal: UpgradeRefused, started: float) -> None:
    """The provider answered the upgrade otherwise (an error, a redirect): the client gets that answer
    as it came, and its record reads it as an HTTP answer's; one with no HTTP status (600 and up) or cut
    short is ccproxy's own error, recorded with the provider's status as the HTTP path records it."""
    if not 100 <= refusal.status <= 599:
        message = f"the provider answered the upgrade with status {refusal.status}, which is not an HTTP status"
        await refuse(socket, send, 502, "upstream_invalid_status", message, started, refusal.status)
        return
    if refusal.cut is not None:
        message = f"the provider's answer to the upgrade (status {refusal.status}) was cut short: {refusal.cut}"
        await refuse(socket, send, 502, "upstream_stream_aborted", message, started, refusal.status)
        return
    if refusal.body is None:
        await refuse(socket, send, refusal.status, f"http_{refusal.status}", str(refusal), started)
        return
    exchange = await _refused_exchange(socket, started)
    exchange.upstream_status = exchange.client_status = refusal.status
    exchange.rate_limits, exchange.upstream_request_id = read_response_headers(exchange.provider, refusal.headers)
    exchange.usage = usage_from_json(OPENAI, refusal.readable_body(), "none")
    if refusal.status < 400:  # a redirect, passed on and not followed: no answer
        exchange.usage.failed, exchange.usage.error_type = True, f"http_{refusal.status}"
    headers = returned_headers(refusal.headers, exchange.context.request_id)
    await _answer(socket, send, exchange, refusal.status, headers, refusal.body)


async def unless_client_leaves(
    connecting: Awaitable[aiohttp.ClientWebSocketResponse], receive: Receive
) -> aiohttp.ClientWebSocketResponse | None:
    """The provider's socket once its upgrade is answered; ``None`` when the client leaves first.

    A provider that never answers the upgrade would otherwise hold its pooled connection until the read
    timeout, long after the client gave up. Before the client's socket is accepted, the only message it
    can bring is its disconnect.
    """
    upgrade, leaving = asyncio.ensure_future(connecting), asyncio.ensure_future(receive())
    try:
        await asyncio.wait({upgrade, leaving}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not upgrade.done() or not leaving.done():
            for task in (upgrade, leaving):
                task.cancel()
            await asyncio.gather(upgrade, leaving, return_exceptions=True)
    answered = not upgrade.cancelled()
    if answered and upgrade.exception() is not None:
        return upgrade.result()  # why it could not be had: a refusal keeps the provider's status, client gone or not
    if not leaving.cancelled() and leaving.exception() is None:  # the client left (perhaps just as it came)
        if answered:
            await upgrade.result().close()
        return None
    return upgrade.result()


async def left_before_answer(socket: _Socket, started: float) -> None:
    """Record an upgrade that ended before the provider answered it: its client gave up (a 499), or the server
    is stopping (uvicorn answers a socket still in its handshake with a 500 then)."""
    exchange = await _refused_exchange(socket, started)
    exchange.upstream_status = None  # no answer came
    if _draining(socket.scope):
        exchange.note_failure("proxy_cancelled", "ccproxy stopped before the provider answered the upgrade", 500)
    else:
        exchange.note_failure("client_disconnected", _LEFT, 499)
    await socket.proxy._finish(exchange)


_LEFT = "the client left before its upgrade was answered"


def _draining(scope: Scope) -> bool:
    draining = getattr(getattr(scope.get("app"), "state", None), "draining", None)
    return draining is not None and draining.is_set()


async def _refused_exchange(socket: _Socket, started: float) -> Exchange:
    exchange = socket._new_exchange(socket.model_from_query, 0, {})
    context = exchange.context
    context.started_at -= timedelta(seconds=context.started_monotonic - started)  # when the upgrade arrived
    context.started_monotonic = started
    exchange.stream_state = None
    await socket.proxy.hooks.start(exchange.context)
    return exchange


async def _answer(
    socket: _Socket, send: Send, exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """The refusal as an HTTP answer, where the server can send one; else the socket closes (1011)."""
    try:
        if "websocket.http.response" in socket.scope.get("extensions", {}):
            length = [(b"content-length", str(len(body)).encode())]
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers + length})
            await send({"type": "websocket.http.response.body", "body": body})
            exchange.response_bytes = len(body)
        else:
            await send({"type": "websocket.close", "code": 1011})
        exchange.response_started_at = time.perf_counter()
    except OSError:  # uvicorn's ClientDisconnected: the client gave up waiting for the provider's answer
        exchange.failure = None
        exchange.note_failure("client_disconnected", _LEFT, 499)
    finally:
        await socket.proxy._finish(exchange)
