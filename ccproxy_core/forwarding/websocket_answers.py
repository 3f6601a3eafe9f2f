"""The answers open on one forwarded WebSocket, and which of them each provider event belongs to.

On the Responses socket answers queue in lanes: a ``response.create`` names its lane with
``stream_id`` (none: the socket's one lane), and the answers of a lane run first in, first out;
the provider's events name their lane with the same ``stream_id``. A ``response.created`` begins
the oldest answer of its lane not begun yet, and binds it to the response's id; an event naming a
response id finds its answer by that id (an id of an answer that has ended belongs to none);
other events belong to the lane's oldest begun answer, else its oldest. An ``error`` emitted by a
response stream (it has a ``sequence_number``) ends the lane's oldest begun answer (else its oldest);
one about a request (a ``status`` and no ``sequence_number``: a ``previous_response_id`` not found,
say) ends the lane's oldest answer not begun, as its refusal, and no answer under way (it may be
about another client event). A ``response.created`` that names no lane, when its lane has no answer
waiting, begins the oldest waiting in any lane.

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

import logging
import re
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from ccproxy_core.forwarding.exchange import Exchange

log = logging.getLogger("ccproxy.websocket")
_RESPONSE_ID = re.compile(r'"response_id"\s*:\s*"([^"\\]{1,256})"')
_STREAM_ID = re.compile(r'"stream_id"\s*:\s*"([^"\\]{1,256})"')
REALTIME_ENDS = frozenset({"response.done", "error"})
"""On the Realtime API, the events that end the answer they belong to."""
ENDED_IDS_KEPT = 64
"""Ids of ended Responses answers remembered, so that a late event of one (a ``response.failed``
after its stream's ``error``) is taken for no other answer."""


@dataclass(slots=True, eq=False)
class OpenAnswer:
    """An answer asked for (or begun by the provider) and not ended yet."""

    exchange: Exchange
    serial: int
    """Its place in the order the answers were asked for."""
    asked_by: str | None = None
    """The ``event_id`` the client gave its ``response.create``, if any."""
    queue: Hashable = False
    """Where it waits to be begun: on the Realtime API whether it is out of band (``response.conversation:
    "none"``); on the Responses socket its lane (the ``stream_id`` of its ``response.create``, else ``None``)."""
    response_id: str | None = None
    """Set once the provider has begun it (``response.created``); ``""`` when it gave no id."""
    provider_begun: bool = False
    """Begun by the provider with no request for it (Realtime voice activity)."""


MOST_PROVIDER_BEGUN = 1_000
"""Open answers the provider began itself on one Realtime socket past which its ``response.created`` begins no more:
a provider beginning answers it never ends must not grow ccproxy's memory without end."""


class OpenAnswers:
    """The answers open on one socket, oldest first, indexed so that finding the answer of an event
    takes the same time however many are open (a client may ask for thousands at once)."""

    def __init__(self, realtime: bool) -> None:
        self.realtime = realtime
        self._serial = 0
        self._open: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._waiting: dict[Hashable, OrderedDict[int, OpenAnswer]] = {}  # not begun, by queue
        self._begun: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._begun_in: dict[Hashable, OrderedDict[int, OpenAnswer]] = {}  # begun, by queue
        self._begun_without_id: OrderedDict[int, OpenAnswer] = OrderedDict()
        self._by_response: dict[str, OpenAnswer] = {}
        self._by_event: dict[str, OrderedDict[int, OpenAnswer]] = {}  # an event_id may repeat: oldest first
        self._ended_ids: OrderedDict[str, None] = OrderedDict()
        self.provider_begun = 0
        """Open answers the provider began with no request for them (bounded by ``MOST_PROVIDER_BEGUN``)."""

    def __bool__(self) -> bool:
        return bool(self._open)

    def add(self, exchange: Exchange, create: dict[str, Any]) -> None:
        """An answer asked for by the ``response.create`` event ``create`` (or begun by the provider)."""
        asked_by, response = create.get("event_id"), create.get("response")
        if self.realtime:
            queue: Hashable = isinstance(response, dict) and response.get("conversation") == "none"
        else:
            queue = _lane(create.get("stream_id"))
        self._serial += 1
        answer = OpenAnswer(exchange, self._serial, asked_by if isinstance(asked_by, str) else None, queue)
        self._open[answer.serial] = answer
        _put(self._waiting, answer)
        if answer.asked_by:
            self._by_event.setdefault(answer.asked_by, OrderedDict())[answer.serial] = answer

    def begin_newest(self, event: dict[str, Any]) -> OpenAnswer | None:
        """The answer just added for a ``response.created`` no answer asked for was waiting for."""
        if not self._open:
            return None
        newest = self._open[next(reversed(self._open))]
        self._begin(newest, _response_id(event.get("response")))
        newest.provider_begun = True
        self.provider_begun += 1
        return newest

    def pass_over(self, event: dict[str, Any]) -> None:
        """A response the provider began that no answer takes (past :data:`MOST_PROVIDER_BEGUN`): its
        later events belong to none, not to an answer begun without an id."""
        if response_id := _response_id(event.get("response")):
            self._note_ended(response_id)

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
            return self._responses_target(event)
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
        the one its ``response_id`` names, else the oldest begun; on the Responses socket the oldest
        begun of the lane its ``stream_id`` names; else the oldest open."""
        if not self._open:
            return None
        if self.realtime:
            found = _RESPONSE_ID.search(text) if '"response_id"' in text else None
            answer = self._by_id(found.group(1) if found else "")
            return None if answer is None else answer.exchange
        found = _STREAM_ID.search(text) if '"stream_id"' in text else None
        lane = self._lane_of(found.group(1) if found else None)
        answer = _first(self._begun_in.get(lane)) or _first(self._waiting.get(lane)) or _first(self._open)
        return None if answer is None else answer.exchange

    def remove(self, answer: OpenAnswer) -> None:
        """``answer`` has ended."""
        if self._open.pop(answer.serial, None) is not None and answer.provider_begun:
            self.provider_begun -= 1
        _drop(self._waiting, answer)
        _drop(self._begun_in, answer)
        self._begun.pop(answer.serial, None)
        self._begun_without_id.pop(answer.serial, None)
        if answer.response_id and self._by_response.get(answer.response_id) is answer:
            del self._by_response[answer.response_id]
            self._note_ended(answer.response_id)
        self._forget_event_id(answer)

    def _note_ended(self, response_id: str) -> None:
        self._ended_ids[response_id] = None
        if len(self._ended_ids) > ENDED_IDS_KEPT:
            self._ended_ids.popitem(last=False)

    def _responses_target(self, event: dict[str, Any]) -> OpenAnswer | None:
        lane = self._lane_of(event.get("stream_id"))
        waiting, begun = self._waiting.get(lane), self._begun_in.get(lane)
        kind = event.get("type")
        if kind == "error":
            if "sequence_number" in event:  # emitted by a response stream: the answer under way failed
                return _first(begun) or _first(waiting)
            return _first(waiting)  # about a request: the refusal of one not begun, else of no answer
        response_id = _response_id(event.get("response"))
        if response_id and (named := self._by_response.get(response_id)) is not None:
            return named
        if response_id in self._ended_ids:
            return None
        if kind == "response.created":  # the oldest not begun of its lane; of any, if the event names none
            oldest = _first(waiting) or (None if _lane(event.get("stream_id")) else self._oldest_waiting({}))
            if oldest is not None:
                self._begin(oldest, response_id)
            return oldest  # none waiting: a response no request here asked for, whose usage is no answer's
        if response_id:  # a response no answer is bound to: the one under way without an id, else none of them
            current = _first(begun)
            if current is None or current.response_id:
                return None
            current.response_id, self._by_response[response_id] = response_id, current
            return current
        return _first(begun) or _first(waiting)

    def _lane_of(self, stream_id: Any) -> Hashable:
        """The lane an event belongs to: the one its ``stream_id`` names, if any answer is open in it; else
        the socket's lane without ``stream_id`` if any is open there, else the lane of the oldest open answer."""
        lane = _lane(stream_id)
        if lane in self._waiting or lane in self._begun_in:
            return lane
        if None in self._waiting or None in self._begun_in:
            return None
        oldest = _first(self._open)
        return oldest.queue if oldest is not None else None

    def _forget_event_id(self, answer: OpenAnswer) -> None:
        asked = self._by_event.get(answer.asked_by or "")
        if asked is not None:
            asked.pop(answer.serial, None)
            if not asked:
                del self._by_event[answer.asked_by or ""]

    def _begin(self, answer: OpenAnswer, response_id: str) -> None:
        _drop(self._waiting, answer)
        self._forget_event_id(answer)
        answer.response_id = response_id
        self._begun[answer.serial] = answer
        _put(self._begun_in, answer)
        if response_id:
            self._by_response[response_id] = answer
        else:
            self._begun_without_id[answer.serial] = answer

    def _oldest_waiting(self, response: dict[str, Any]) -> OpenAnswer | None:
        """The oldest answer not begun that a ``response.created`` of ``response`` may begin: of its kind
        (``conversation_id`` null: out of band; a conversation's id: in it; not given: either)."""
        if "conversation_id" in response:
            return _first(self._waiting.get(response["conversation_id"] is None))
        heads = [answer for answer in map(_first, self._waiting.values()) if answer is not None]
        return min(heads, key=lambda answer: answer.serial, default=None)

    def _by_id(self, response_id: str) -> OpenAnswer | None:
        """The open answer ``response_id`` names; with no id, the oldest begun, else the oldest."""
        if response_id:  # an id no open answer has is an answer's begun without one, or none's
            if response_id in self._ended_ids:  # ended, or passed over: no other answer's
                return None
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
            return _first(self._by_event.get(named))
        return self._oldest_waiting({}) if _about_a_response(error) else None


def said_too_many_open(path: str) -> bool:
    """Say, once per socket, that the provider began more answers than are kept open; True."""
    log.warning(
        "the provider on a %s socket began answers with %d already open: they are not recorded (it ends none?)",
        path,
        MOST_PROVIDER_BEGUN,
    )
    return True


def _put(queues: dict[Hashable, OrderedDict[int, OpenAnswer]], answer: OpenAnswer) -> None:
    queues.setdefault(answer.queue, OrderedDict())[answer.serial] = answer


def _drop(queues: dict[Hashable, OrderedDict[int, OpenAnswer]], answer: OpenAnswer) -> None:
    """Take ``answer`` out of its queue; a queue left empty goes (a client may name a new lane per answer)."""
    queue = queues.get(answer.queue)
    if queue is not None and queue.pop(answer.serial, None) is not None and not queue:
        del queues[answer.queue]


def _lane(stream_id: Any) -> str | None:
    return stream_id if isinstance(stream_id, str) else None


def _first(answers: OrderedDict[int, OpenAnswer] | None) -> OpenAnswer | None:
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
