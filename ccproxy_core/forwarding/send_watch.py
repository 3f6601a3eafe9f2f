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

import time
from typing import TYPE_CHECKING

from starlette.types import Message, Send

from ccproxy_core.forwarding.task_watch import TaskWatch, WatchScope

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

SWEEP_SECONDS = 1.0
"""How often the writes in progress are looked at."""


class _WatchedSend:
    """The client's ``send``, noting when a write began and clearing it when the write is done."""

    __slots__ = ("_send", "cut", "exchange", "since")

    def __init__(self, send: Send, exchange: Exchange) -> None:
        self._send = send
        self.exchange = exchange
        self.since: float | None = None
        self.cut = False

    async def __call__(self, message: Message) -> None:
        self.since = time.monotonic()
        try:
            await self._send(message)
        finally:
            self.since = None


class SendWatch(TaskWatch[_WatchedSend]):
    """The answers of one proxy being written, and the sweep that ends those whose client stopped reading."""

    def __init__(self, limit_seconds: float) -> None:
        super().__init__()
        self.limit_seconds = limit_seconds

    def watching(self, send: Send, exchange: Exchange) -> WatchScope[_WatchedSend]:
        """A context around the current task's writing of its answer; ``as`` gives the ``send`` to write with.

        When a write waits longer than the limit the task is cancelled; on the way out the
        cancellation is taken back and ``exchange`` records the stalled client (499)."""
        return self.scope(_WatchedSend(send, exchange))

    def interval(self) -> float:
        return SWEEP_SECONDS

    def must_cut(self, entry: _WatchedSend) -> bool:
        return entry.since is not None and entry.since < time.monotonic() - self.limit_seconds

    def note_cut(self, entry: _WatchedSend) -> None:
        message = (
            f"the client read nothing of the answer for SERVER__SEND_TIMEOUT_SECONDS={self.limit_seconds:g}; "
            "ccproxy closed the connection"
        )
        entry.exchange.note_failure("client_disconnected", message, 499)
