"""Noticing a client that stops reading the answer while keeping its connection open.

Once the kernel's buffers are full, writing to such a client waits for ever: its request would
hold a provider connection (of UPSTREAM__MAX_CONNECTIONS) and never be recorded until the server
stops. A write that has waited SERVER__SEND_TIMEOUT_SECONDS ends the request instead, as
nginx's ``send_timeout`` does: the connection to the provider and the client's are closed and the
record says ``client_disconnected`` (499), the client's doing, as when it hangs up.

One sweep a second looks at the requests whose answer is being written; a write costs two
attribute stores, not a timer of its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Send

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

SWEEP_SECONDS = 1.0
"""How often the writes in progress are looked at."""
IDLE_SWEEPS = 2
"""Sweeps with nothing watched after which the sweeping task ends (the next answer starts it again)."""


class _WatchedSend:
    """The client's ``send``, noting when a write began and clearing it when the write is done."""

    __slots__ = ("_send", "exchange", "since", "stalled")

    def __init__(self, send: Send, exchange: Exchange) -> None:
        self._send = send
        self.exchange = exchange
        self.since: float | None = None
        self.stalled = False

    async def __call__(self, message: Message) -> None:
        self.since = time.monotonic()
        try:
            await self._send(message)
        finally:
            self.since = None


class SendWatch:
    """The answers of one proxy being written, and the sweep that ends those whose client stopped reading."""

    def __init__(self, limit_seconds: float) -> None:
        self.limit_seconds = limit_seconds
        self._writing: dict[asyncio.Task[Any], _WatchedSend] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def watching(self, send: Send, exchange: Exchange) -> _WatchScope:
        """A context around the current task's writing of its answer; ``as`` gives the ``send`` to write with.

        When a write waits longer than the limit the task is cancelled; on the way out the
        cancellation is taken back and ``exchange`` records the stalled client (499)."""
        return _WatchScope(self, _WatchedSend(send, exchange))

    async def _sweep(self) -> None:
        idle = 0
        try:
            while idle < IDLE_SWEEPS:
                await asyncio.sleep(SWEEP_SECONDS)
                idle = 0 if self._writing else idle + 1
                too_old = time.monotonic() - self.limit_seconds
                for task, watched in list(self._writing.items()):
                    if not watched.stalled and watched.since is not None and watched.since < too_old:
                        watched.stalled = True
                        task.cancel()
        finally:
            self._sweeper = None


class _WatchScope:
    def __init__(self, watch: SendWatch, watched: _WatchedSend) -> None:
        self._watch, self._watched = watch, watched
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> Send:
        self._task = asyncio.current_task()
        if self._task is not None:
            self._watch._writing[self._task] = self._watched
            if self._watch._sweeper is None:
                self._watch._sweeper = asyncio.ensure_future(self._watch._sweep())
        return self._watched

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> bool:
        if self._task is None:
            return False
        self._watch._writing.pop(self._task, None)
        if not (self._watched.stalled and isinstance(error, asyncio.CancelledError)):
            return False
        self._task.uncancel()
        message = (
            f"the client read nothing of the answer for SERVER__SEND_TIMEOUT_SECONDS={self._watch.limit_seconds:g}; "
            "ccproxy closed the connection"
        )
        self._watched.exchange.note_failure("client_disconnected", message, 499)
        return True
