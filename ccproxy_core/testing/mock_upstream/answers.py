"""Provider-neutral shapes of a prepared answer, and the request-body checks both providers make."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

JSON_CONTENT_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """A complete body sent in one response (a completion, an error, a model list)."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamAnswer:
    """A server-sent-event stream, cut into the parts that faults act on.

    ``head`` goes out first, then each of ``deltas`` (paced, and where an abort or a
    mid-stream error may happen), then ``tail``. ``error_event`` replaces the rest of
    the stream when ``x-mock-stream-error-after`` asks for it (empty otherwise).
    """

    headers: dict[str, str]
    head: bytes
    deltas: list[bytes]
    tail: bytes
    error_event: bytes


class InvalidRequest(ValueError):
    """The body is not a request the provider would accept; ``param`` names the bad field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def json_object(body: bytes | str) -> dict[str, Any]:
    """A request body (or event) as a JSON object; InvalidRequest (a 400, as the providers answer) otherwise."""
    try:
        payload = json.loads(body)
    except ValueError as error:
        raise InvalidRequest(f"request body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("request body must be a JSON object")
    return payload


def load_payload(body: bytes, required_list: str | None = "messages") -> dict[str, Any]:
    """Parse a completion body; raise InvalidRequest unless it is an object with ``model`` (and a list field)."""
    payload = json_object(body)
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required (a non-empty string)", "model")
    if required_list and not isinstance(payload.get(required_list), list):
        raise InvalidRequest(f"{required_list}: Field required (a list)", required_list)
    return payload


def dump(value: Any) -> bytes:
    """Compact JSON bytes, as the providers send them."""
    return json.dumps(value, separators=(",", ":")).encode()


def sse_event(name: str | None, data: str) -> bytes:
    """One server-sent event; ``name`` None omits the ``event:`` line (OpenAI's style)."""
    if name is None:
        return f"data: {data}\n\n".encode()
    return f"event: {name}\ndata: {data}\n\n".encode()
