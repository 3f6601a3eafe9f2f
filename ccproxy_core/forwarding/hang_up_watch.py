"""Noticing a client that hangs up while the provider has not answered yet.

A provider may take minutes before the head of its answer (a JSON answer comes whole, when the
model is done). A client that gives up meanwhile (Ctrl-C, its own timeout before a retry) would
otherwise be noticed only when ccproxy writes to it, after the provider's answer or its timeout:
the provider kept working for nobody, and the record said 504 where the client got nothing. As a
reverse proxy does by default, ccproxy then closes its connection to the provider, which sees the
hang-up it would have seen direct.

One sweep every :data:`WATCH_AFTER_SECONDS` looks at every request still waiting, asking
uvicorn's ``receive()`` without waiting (:func:`ready_message`) whether its client has left.
A request answered sooner costs an entry in a dict, not a timer or a task of its own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import Receive

from ccproxy_core.forwarding.receive_probe import ready_message

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

WATCH_AFTER_SECONDS = 0.5
"""How often the requests waiting for the provider have their clients' connections looked at."""
IDLE_SWEEPS = 2
"""Sweeps with nothing waiting after which the sweeping task ends (the next wait starts it again)."""


@dataclass(slots=True)
class _Waiting:
    receive: Receive
    exchange: Exchange
    client_left: bool = False


class HangUpWatch:
    """The requests of one proxy waiting for a provider, and the sweep that finds their clients gone."""

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Task[Any], _Waiting] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def waiting(self, receive: Receive, exchange: Exchange) -> _WaitScope:
        """A context around the current task's wait for the provider, entered once the request body has
        been read. When the client leaves meanwhile the task is cancelled; on the way out the cancellation
        is taken back and ``exchange`` records the hang-up (499) instead of whatever the wait was."""
        return _WaitScope(self, _Waiting(receive, exchange))

    def _enter(self, task: asyncio.Task[Any], waiting: _Waiting) -> None:
        self._waiting[task] = waiting
        if self._sweeper is None:
            self._sweeper = asyncio.ensure_future(self._sweep())

    def _leave(self, task: asyncio.Task[Any]) -> None:
        self._waiting.pop(task, None)

    async def _sweep(self) -> None:
        idle = 0
        try:
            while idle < IDLE_SWEEPS:
                await asyncio.sleep(WATCH_AFTER_SECONDS)
                idle = 0 if self._waiting else idle + 1
                for task, waiting in list(self._waiting.items()):
                    if not waiting.client_left and _left(waiting.receive):
                        waiting.client_left = True
                        task.cancel()
        finally:
            self._sweeper = None


class _WaitScope:
    def __init__(self, watch: HangUpWatch, waiting: _Waiting) -> None:
        self._watch, self._waiting = watch, waiting
        self._task: asyncio.Task[Any] | None = None

    def __enter__(self) -> None:
        self._task = asyncio.current_task()
        if self._task is not None:
            self._watch._enter(self._task, self._waiting)

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: object) -> bool:
        if self._task is None:
            return False
        self._watch._leave(self._task)
        if not (self._waiting.client_left and isinstance(error, asyncio.CancelledError)):
            return False
        self._task.uncancel()
        message = "the client closed the connection before the provider answered"
        self._waiting.exchange.note_failure("client_disconnected", message, 499)
        return True


def _left(receive: Receive) -> bool:
    message = ready_message(receive)
    return message is not None and message.get("type") == "http.disconnect"
