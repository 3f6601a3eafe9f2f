"""Noticing a client that hangs up while the provider has not answered yet.

A provider may take minutes before the head of its answer (a JSON answer comes whole, when the
model is done). A client that gives up meanwhile (Ctrl-C, its own timeout before a retry) would
otherwise be noticed only when ccproxy writes to it, after the provider's answer or its timeout:
the provider kept working for nobody, and the record said 504 where the client got nothing. As a
reverse proxy does by default, ccproxy then closes its connection to the provider, which sees the
hang-up it would have seen direct.

Requests answered quickly never start a watcher: it is set up only once the wait has lasted
:data:`WATCH_AFTER_SECONDS`, so the common case costs one timer handle.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from starlette.types import Receive

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

WATCH_AFTER_SECONDS = 0.5
"""How long the wait for the provider lasts before ccproxy starts watching the client's connection."""


class HangUpWatch:
    """A context around the wait for the provider that ends it when the client hangs up meanwhile.

    Enter it once the request body has been read (the next ASGI message is then the client's
    disconnect). When the client leaves, the waiting task is cancelled, the cancellation is taken
    back on the way out, and ``exchange`` records the hang-up (499) instead of whatever the wait was.
    """

    def __init__(self, receive: Receive, exchange: Exchange) -> None:
        self.client_left = False
        self._receive, self._exchange = receive, exchange
        self._waiting: asyncio.Task[Any] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> HangUpWatch:
        self._waiting = asyncio.current_task()
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, self._start)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> bool:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if not (self.client_left and isinstance(error, asyncio.CancelledError) and self._waiting is not None):
            return False
        self._waiting.uncancel()
        message = "the client closed the connection before the provider answered"
        self._exchange.note_failure("client_disconnected", message, 499)
        return True

    def _start(self) -> None:
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.client_left = True
        if self._waiting is not None:
            self._waiting.cancel()
