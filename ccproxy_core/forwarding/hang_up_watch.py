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

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.types import Receive

from ccproxy_core.forwarding.receive_probe import ready_message
from ccproxy_core.forwarding.task_watch import TaskWatch, WatchScope

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

WATCH_AFTER_SECONDS = 0.5
"""How often the requests waiting for the provider have their clients' connections looked at."""


@dataclass(slots=True)
class _Waiting:
    receive: Receive
    exchange: Exchange
    when: str
    cut: bool = False


class HangUpWatch(TaskWatch[_Waiting]):
    """The requests of one proxy waiting for a provider, and the sweep that finds their clients gone."""

    def waiting(
        self, receive: Receive, exchange: Exchange, when: str = "before the provider answered"
    ) -> WatchScope[_Waiting]:
        """A context around the current task's wait for the provider, entered once the request body has
        been read (and again while a whole answer arrives). When the client leaves meanwhile the task is
        cancelled; on the way out the cancellation is taken back and ``exchange`` records the hang-up
        (499, "the client closed the connection <when>") instead of whatever the wait was."""
        return self.scope(_Waiting(receive, exchange, when))

    def interval(self) -> float:
        return WATCH_AFTER_SECONDS

    def must_cut(self, entry: _Waiting) -> bool:
        message = ready_message(entry.receive)
        return message is not None and message.get("type") == "http.disconnect"

    def note_cut(self, entry: _Waiting) -> None:
        entry.exchange.note_failure("client_disconnected", f"the client closed the connection {entry.when}", 499)
