"""The answers open on one forwarded WebSocket, and which of them each provider event belongs to.

On the Responses socket answers come one after the other: every event belongs to the oldest open
answer, and its terminal event (``error`` included) ends it.

On the Realtime API several answers may be open at once (out-of-band ones beside the
conversation's), the provider begins some itself (voice activity), and an ``error`` event is
recoverable: it names the client event that caused it (``error.event_id``) and ends no answer the
provider has begun, which ends with its own ``response.done``. So each ``response.created`` begins
the oldest answer asked for and not begun yet, of its kind: out of band (``conversation: "none"``,
begun with ``conversation_id`` null) or in the conversation (else it is a new one, begun by the
provider); later events find their answer by its response id; and an ``error`` ends only an
answer not begun: the one whose ``response.create`` it names or, when it names no client event,
the oldest, if the error is about a response (an active one already, or a ``response.*`` field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ccproxy_core.forwarding.exchange import Exchange

_RESPONSE_ID = re.compile(r'"response_id"\s*:\s*"([^"\\]{1,256})"')
REALTIME_ENDS = frozenset({"response.done", "error"})
"""On the Realtime API, the events that end the answer they belong to."""


@dataclass(slots=True, eq=False)
class OpenAnswer:
    """An answer asked for (or begun by the provider) and not ended yet."""

    exchange: Exchange
    asked_by: str | None = None
    """The ``event_id`` the client gave its ``response.create``, if any."""
    out_of_band: bool = False
    """Asked for outside the conversation (``response.conversation: "none"``)."""
    response_id: str | None = None
    """Set once the provider has begun it (Realtime ``response.created``); ``""`` when it gave no id."""


class OpenAnswers:
    """The answers open on one socket, oldest first."""

    def __init__(self, realtime: bool) -> None:
        self.realtime = realtime
        self._open: list[OpenAnswer] = []

    def __bool__(self) -> bool:
        return bool(self._open)

    def add(self, exchange: Exchange, create: dict[str, Any]) -> None:
        """An answer asked for by the ``response.create`` event ``create`` (or begun by the provider)."""
        asked_by, response = create.get("event_id"), create.get("response")
        out_of_band = isinstance(response, dict) and response.get("conversation") == "none"
        self._open.append(OpenAnswer(exchange, asked_by if isinstance(asked_by, str) else None, out_of_band))

    def begin_newest(self, event: dict[str, Any]) -> OpenAnswer | None:
        """The answer just added for a ``response.created`` no answer asked for was waiting for."""
        if not self._open:
            return None
        self._open[-1].response_id = _response_id(event.get("response"))
        return self._open[-1]

    def take_all(self) -> list[Exchange]:
        """Every open answer, oldest first; none is open afterwards."""
        answers, self._open = self._open, []
        return [answer.exchange for answer in answers]

    def waiting(self) -> bool:
        """Whether an answer asked for has not been begun by the provider yet (Realtime)."""
        return any(answer.response_id is None for answer in self._open)

    def target(self, event: dict[str, Any]) -> OpenAnswer | None:
        """The answer a decoded provider event is about; ``None`` when it is about none open."""
        if not self._open:
            return None
        if not self.realtime:
            return self._open[0]
        kind = event.get("type")
        if kind == "error":
            return self._refused(event.get("error"))
        response = event.get("response")
        if not isinstance(kind, str) or not kind.startswith("response.") or not isinstance(response, dict):
            return None
        response_id = _response_id(response)
        if kind == "response.created":
            begun = next((answer for answer in self._open if _begins(response, answer)), None)
            if begun is not None:
                begun.response_id = response_id
            return begun
        return self._by_id(response_id)

    def owner(self, text: str) -> Exchange | None:
        """The answer a provider message counts for (its bytes, its first token): on the Realtime API
        the one its ``response_id`` names, else the oldest begun; else the oldest open."""
        if not self._open:
            return None
        if self.realtime:
            found = _RESPONSE_ID.search(text) if '"response_id"' in text else None
            return self._by_id(found.group(1) if found else "").exchange
        return self._open[0].exchange

    def remove(self, answer: OpenAnswer) -> None:
        """``answer`` has ended."""
        self._open.remove(answer)

    def _by_id(self, response_id: str) -> OpenAnswer:
        """The open answer ``response_id`` names, else the oldest begun, else the oldest (one must be open)."""
        named = next((answer for answer in self._open if response_id and answer.response_id == response_id), None)
        begun = next((answer for answer in self._open if answer.response_id is not None), None)
        return named or begun or self._open[0]

    def _refused(self, error: Any) -> OpenAnswer | None:
        """The answer not begun that a Realtime ``error`` refuses; ``None`` for an error about another event."""
        if not isinstance(error, dict):
            return None
        named = error.get("event_id")
        waiting = [answer for answer in self._open if answer.response_id is None]
        if isinstance(named, str) and named:
            return next((answer for answer in waiting if answer.asked_by == named), None)
        return waiting[0] if waiting and _about_a_response(error) else None


def _response_id(response: Any) -> str:
    found = response.get("id") if isinstance(response, dict) else None
    return found if isinstance(found, str) else ""


def _begins(response: dict[str, Any], answer: OpenAnswer) -> bool:
    """Whether a ``response.created`` of ``response`` may begin ``answer``: one not begun, of its kind
    (``conversation_id`` null: out of band; a conversation's id: in it; not given: either)."""
    if answer.response_id is not None:
        return False
    if "conversation_id" not in response:
        return True
    return answer.out_of_band == (response["conversation_id"] is None)


def _about_a_response(error: dict[str, Any]) -> bool:
    """Whether an error naming no client event is about a ``response.create``: one while another is active,
    or one of its fields (``param`` ``response.*``)."""
    param = error.get("param")
    return error.get("code") == "conversation_already_has_active_response" or (
        isinstance(param, str) and param.startswith("response")
    )
