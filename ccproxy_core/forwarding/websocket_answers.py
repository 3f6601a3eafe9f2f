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
from collections import OrderedDict
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
    serial: int
    """Its place in the order the answers were asked for."""
    asked_by: str | None = None
    """The ``event_id`` the client gave its ``response.create``, if any."""
    out_of_band: bool = False
    """Asked for outside the conversation (``response.conversation: "none"``)."""
    response_id: str | None = None
    """Set once the provider has begun it (Realtime ``response.created``); ``""`` when it gave no id."""


class OpenAnswers:
    """The answers open on one socket, oldest first, indexed so that finding the answer of an event
    takes the same time however many are open (a client may ask for thousands at once)."""

    def __init__(self, realtime: bool) -> None:
        self.realtime = realtime
        self._serial = 0
        self._open: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._waiting = {kind: OrderedDict[int, OpenAnswer]() for kind in (False, True)}  # not begun, by out_of_band
        self._begun: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._begun_without_id: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._by_response: dict[str, OpenAnswer] = {}
        self._by_event: dict[str, OrderedDict[int, OpenAnswer]] = {}  # an event_id may repeat: oldest first

    def __bool__(self) -> bool:
        return bool(self._open)

    def add(self, exchange: Exchange, create: dict[str, Any]) -> None:
        """An answer asked for by the ``response.create`` event ``create`` (or begun by the provider)."""
        asked_by, response = create.get("event_id"), create.get("response")
        out_of_band = isinstance(response, dict) and response.get("conversation") == "none"
        self._serial += 1
        answer = OpenAnswer(exchange, self._serial, asked_by if isinstance(asked_by, str) else None, out_of_band)
        self._open[answer.serial] = self._waiting[out_of_band][answer.serial] = answer
        if answer.asked_by:
            self._by_event.setdefault(answer.asked_by, OrderedDict())[answer.serial] = answer

    def begin_newest(self, event: dict[str, Any]) -> OpenAnswer | None:
        """The answer just added for a ``response.created`` no answer asked for was waiting for."""
        if not self._open:
            return None
        newest = self._open[next(reversed(self._open))]
        self._begin(newest, _response_id(event.get("response")))
        return newest

    def take_all(self) -> list[Exchange]:
        """Every open answer, oldest first; none is open afterwards."""
        answers = list(self._open.values())
        for answer in answers:
            self.remove(answer)
        return [answer.exchange for answer in answers]

    def target(self, event: dict[str, Any]) -> OpenAnswer | None:
        """The answer a decoded provider event is about; ``None`` when it is about none open."""
        if not self._open:
            return None
        if not self.realtime:
            return _first(self._open)
        kind = event.get("type")
        if kind == "error":
            return self._refused(event.get("error"))
        response = event.get("response")
        if not isinstance(kind, str) or not kind.startswith("response.") or not isinstance(response, dict):
            return None
        if kind == "response.created":
            if (again := self._by_response.get(_response_id(response))) is not None:
                return again  # the same response begun twice is still one answer
            begun = self._oldest_waiting(response)
            if begun is not None:
                self._begin(begun, _response_id(response))
            return begun
        return self._by_id(_response_id(response))

    def owner(self, text: str) -> Exchange | None:
        """The answer a provider message counts for (its bytes, its first token): on the Realtime API
        the one its ``response_id`` names, else the oldest begun; else the oldest open."""
        if not self._open:
            return None
        if self.realtime:
            found = _RESPONSE_ID.search(text) if '"response_id"' in text else None
            answer = self._by_id(found.group(1) if found else "")
            return None if answer is None else answer.exchange
        return self._open[next(iter(self._open))].exchange

    def remove(self, answer: OpenAnswer) -> None:
        """``answer`` has ended."""
        self._open.pop(answer.serial, None)
        self._waiting[answer.out_of_band].pop(answer.serial, None)
        self._begun.pop(answer.serial, None)
        self._begun_without_id.pop(answer.serial, None)
        if answer.response_id and self._by_response.get(answer.response_id) is answer:
            del self._by_response[answer.response_id]
        self._forget_event_id(answer)

    def _forget_event_id(self, answer: OpenAnswer) -> None:
        asked = self._by_event.get(answer.asked_by or "")
        if asked is not None:
            asked.pop(answer.serial, None)
            if not asked:
                del self._by_event[answer.asked_by or ""]

    def _begin(self, answer: OpenAnswer, response_id: str) -> None:
        self._waiting[answer.out_of_band].pop(answer.serial, None)
        self._forget_event_id(answer)
        answer.response_id = response_id
        self._begun[answer.serial] = answer
        if response_id:
            self._by_response[response_id] = answer
        else:
            self._begun_without_id[answer.serial] = answer

    def _oldest_waiting(self, response: dict[str, Any]) -> OpenAnswer | None:
        """The oldest answer not begun that a ``response.created`` of ``response`` may begin: of its kind
        (``conversation_id`` null: out of band; a conversation's id: in it; not given: either)."""
        if "conversation_id" in response:
            return _first(self._waiting[response["conversation_id"] is None])
        heads = [answer for answer in map(_first, self._waiting.values()) if answer is not None]
        return min(heads, key=lambda answer: answer.serial, default=None)

    def _by_id(self, response_id: str) -> OpenAnswer | None:
        """The open answer ``response_id`` names; with no id, the oldest begun, else the oldest."""
        if response_id:  # an id no open answer has is an answer's begun without one, or none's
            return self._by_response.get(response_id) or _first(self._begun_without_id)
        return _first(self._begun) or _first(self._open)

    def _refused(self, error: Any) -> OpenAnswer | None:
        """The answer not begun that a Realtime ``error`` refuses; ``None`` for an error about another event."""
        if not isinstance(error, dict):
            return None
        named = error.get("event_id")
        param = error.get("param")
        if isinstance(param, str) and param and not param.startswith("response"):
            return None  # about another event's field (item.type), whatever id it names
        if isinstance(named, str) and named:
            return _first(self._by_event.get(named, OrderedDict()))
        return self._oldest_waiting({}) if _about_a_response(error) else None


def _first(answers: OrderedDict[int, OpenAnswer]) -> OpenAnswer | None:
    return answers[next(iter(answers))] if answers else None


def _response_id(response: Any) -> str:
    found = response.get("id") if isinstance(response, dict) else None
    return found if isinstance(found, str) else ""


def _about_a_response(error: dict[str, Any]) -> bool:
    """Whether an error naming no client event is about a ``response.create``: one while another is active,
    or one of its fields (``param`` ``response.*``)."""
    param = error.get("param")
    return error.get("code") == "conversation_already_has_active_response" or (
        isinstance(param, str) and param.startswith("response")
    )
