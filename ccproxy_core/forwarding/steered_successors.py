"""Responses the provider begins itself on the Responses socket: the successors of steered responses.

A client may steer a response under way (``response.steer``). Once the provider has accepted the
input (``response.steer.accepted``, naming the steered response), it begins a successor itself, with
no ``response.create`` for it, when the steered response ends (``response.incomplete``, reason
``steered``) or completes. The successor continues from it (its ``previous_response_id``) and is
billed as any response: it is an answer of its own, begun by the provider, and takes no answer a
client's ``response.create`` is waiting with. Input left for the client's own continuation
(``response.steer.pending``) or not committed (``response.steer.failed``) brings no successor.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

EVENT_MARKERS = ('"response.steer.accepted"', '"response.steer.pending"', '"response.steer.failed"')
"""The steering events decoded to follow which responses will have a successor."""
MOST_EXPECTED = 64
"""Steered responses whose successor is awaited on one socket, and steers of each, at most (the oldest
responses are forgotten)."""


STEERED = ""
"""Stands for a steered ``response.incomplete`` among the steers a successor is expected for: it commits them."""


class SteeredSuccessors:
    """The responses of one socket whose successor the provider will begin itself."""

    def __init__(self) -> None:
        self._expected: OrderedDict[str, set[str]] = OrderedDict()
        """By steered response: the accepted steers its successor will commit (``STEERED``: it stopped for them)."""

    def begun(self, event: Any) -> bool:
        """Whether ``event`` is the ``response.created`` of a successor (expected once); other events are
        noted for the successors they promise or call off."""
        if not isinstance(event, dict):
            return False
        kind, response, steer = event.get("type"), event.get("response"), event.get("steer")
        if kind == "response.created" and isinstance(response, dict):
            previous = response.get("previous_response_id")
            return isinstance(previous, str) and bool(self._expected.pop(previous, None))
        if kind == "response.incomplete" and isinstance(response, dict) and _steered(response):
            self._expect(response.get("id"), STEERED)
        elif isinstance(steer, dict) and kind == "response.steer.accepted":
            steer_id = steer.get("id")
            self._expect(steer.get("previous_response_id"), steer_id if isinstance(steer_id, str) else "?")
        elif isinstance(steer, dict) and kind in ("response.steer.pending", "response.steer.failed"):
            # That steer only (one refused before it had an id is none of them): others may still bring a successor.
            previous, steer_id = steer.get("previous_response_id"), steer.get("id")
            steers = self._expected.get(previous) if isinstance(previous, str) else None
            if steers is not None and isinstance(steer_id, str):
                steers.discard(steer_id)
        return False

    def _expect(self, response_id: Any, steer_id: str) -> None:
        if isinstance(response_id, str) and response_id:
            self._expected.setdefault(response_id, set())
            if len(self._expected[response_id]) < MOST_EXPECTED:
                self._expected[response_id].add(steer_id)
            if len(self._expected) > MOST_EXPECTED:
                self._expected.popitem(last=False)


def _steered(response: dict[str, Any]) -> bool:
    details = response.get("incomplete_details")
    return isinstance(details, dict) and details.get("reason") == "steered"


def provider_create(event: dict[str, Any]) -> str:
    """The ``response.create`` the provider's own ``response.created`` stands for: its model and lane."""
    response = event.get("response")
    model = response.get("model") if isinstance(response, dict) else None
    create: dict[str, Any] = {"type": "response.create", "model": model}
    if isinstance(event.get("stream_id"), str):
        create["stream_id"] = event["stream_id"]
    return json.dumps(create)
