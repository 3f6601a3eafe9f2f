"""Requests recorded without being forwarded: refused before their body was read, cut by the
shutdown while it arrived, or left by their client before they were sent on."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from ccproxy_core.forwarding.exchange import Arrival, Exchange
from ccproxy_core.forwarding.exchange_start import start_exchange
from ccproxy_core.forwarding.large_bodies import body_timeout_message
from ccproxy_core.forwarding.receive_probe import left_before_read
from ccproxy_core.forwarding.responses import answer_cut_request
from ccproxy_core.runtime.body_budget import body_room_message
from ccproxy_core.runtime.server_limits import BROKEN_BODY

if TYPE_CHECKING:
    from ccproxy_core.accounting.attribution import Attributor
    from ccproxy_core.plugin_host.dispatch import RequestHooks
    from ccproxy_core.providers import ProxyRoute
    from ccproxy_core.runtime.settings import Settings
    from ccproxy_core.safe_values import ValueCaps


class UnforwardedRequests:
    """The proxy's answers and records for requests it never sends on (see ``Proxy``)."""

    settings: Settings
    hooks: RequestHooks
    caps: ValueCaps
    attributor: Attributor
    configured_keys: tuple[str, ...]

    def _start_exchange(
        self,
        scope: Scope,
        route: ProxyRoute,
        body: bytes | bytearray | None,
        fields: tuple[dict | None, str | None, bool],
        arrived: Arrival,
    ) -> Exchange:
        return start_exchange(scope, route, body, fields, arrived, self.caps, self.attributor, self.configured_keys)

    async def _local_error(self, exchange: Exchange, send: Send, status: int, error_type: str, message: str) -> None:
        raise NotImplementedError

    async def _finish(self, exchange: Exchange) -> None:
        raise NotImplementedError

    async def _left_while_sending(self, scope: Scope, route: ProxyRoute, arrived: Arrival) -> None:
        """The client hung up before its request was forwarded (while sending its body, or while it waited
        for room for it), or the server refused its broken framing with a 400: the record says which."""
        exchange = self._start_exchange(scope, route, None, (None, None, False), arrived)
        await self.hooks.start(exchange.context)
        if (broken := scope.get(BROKEN_BODY)) is not None:
            exchange.note_failure("invalid_request", broken, 400)
        else:
            exchange.note_failure("client_disconnected", "the client hung up before its request was sent on", 499)
        await self._finish(exchange)

    async def _cut_while_receiving(self, scope: Scope, route: ProxyRoute, send: Send, arrived: Arrival) -> bool:
        """A recorded 503 for a request the shutdown cut before it was sent on; True once the client has it."""
        exchange = self._start_exchange(scope, route, None, (None, None, False), arrived)
        exchange.note_failure("proxy_cancelled", "the server stopped before the request was sent on")
        try:
            await self.hooks.start(exchange.context)
            return await answer_cut_request(exchange, send, cancelled=True)
        finally:
            await self._finish(exchange)

    async def _no_room(
        self, scope: Scope, route: ProxyRoute, send: Send, receive: Receive, arrived: Arrival, cut: bool
    ) -> None:
        """A request whose wait for body room ended without room: a 499 when its client left meanwhile; else
        ``cut`` by the shutdown (a recorded 503; the cancellation goes on when the client could not be told),
        or refused (a recorded 503)."""
        try:
            left = await left_before_read(receive)
        except asyncio.CancelledError:  # the shutdown's time ran out while it looked
            left, cut = False, True
        if left:
            await self._left_while_sending(scope, route, arrived)
        elif cut:
            if not await self._cut_while_receiving(scope, route, send, arrived):
                raise asyncio.CancelledError
        else:
            await self._refused_unread(scope, route, send, arrived, 503)

    async def _refused_unread(self, scope: Scope, route: ProxyRoute, send: Send, arrived: Arrival, status: int) -> None:
        """A recorded 408 (the client stopped sending its body) or 503 (no room for it came free in time)."""
        exchange = self._start_exchange(scope, route, None, (None, None, False), arrived)
        await self.hooks.start(exchange.context)
        timed_out, server = status == 408, self.settings.server
        try:
            exchange.extra_headers.append((b"connection", b"close"))  # the rest of the body will not be read
            message = body_timeout_message(server) if timed_out else body_room_message(server)
            await self._local_error(exchange, send, status, "request_timeout" if timed_out else "proxy_busy", message)
        finally:
            await self._finish(exchange)
