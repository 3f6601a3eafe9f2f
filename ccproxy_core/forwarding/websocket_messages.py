"""A WebSocket message read for its accounting: large ones off the event loop, with their long strings left out.

Every message is relayed whole and unchanged before or after it is read; reading is what these
functions do. A message over ``LARGE_BODY_BYTES`` characters is read in a worker thread. Decoding
holds the interpreter whatever thread does it, so a large message's long strings (prompts, output
text, base64 media), from which nothing is read, are left out before it is decoded. A message over
``UPSTREAM__MAX_DECODED_BYTES`` characters is not decoded at all: only its top-level ``type`` and
``model`` are found, and an answer's usage in it is unknown.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES, top_level_value_starts, top_level_values
from ccproxy_core.forwarding.realtime_transcriptions import EVENT_MARKERS as TRANSCRIPTION_MARKERS
from ccproxy_core.forwarding.steered_successors import EVENT_MARKERS as STEER_MARKERS
from ccproxy_core.json_text import decode_json, without_long_strings

_T = TypeVar("_T")

# Any output delta with content, as for an answer over HTTP: text, a transcript or audio, a refusal,
# reasoning, a tool's arguments (the beta Realtime protocol names them ``response.text.delta``, ...).
_FIRST_TOKEN = re.compile(r'"type"\s*:\s*"response\.[a-z_.]+\.delta"')
_DELTA_CONTENT = re.compile(r'"delta"\s*:\s*"[^"]')
_EVENT_MARKERS = (
    '"response.created"',
    '"response.completed"',
    '"response.failed"',
    '"response.incomplete"',
    '"response.done"',
    '"error"',
    *TRANSCRIPTION_MARKERS,
    *STEER_MARKERS,
)
_FAILED_BY_TYPE = {"response.failed": "failed", "response.incomplete": "incomplete"}
LONGEST_READ_STRING = 64 * 1024
"""In a message over ``LARGE_BODY_BYTES``, strings longer than this are not decoded: no model, id,
status or count is that long, and the prompts and output text that are would hold the interpreter."""


async def off_the_loop_if_large(read: Callable[..., _T], text: str, *args: Any) -> _T:
    """``read(text, *args)``, in a worker thread when ``text`` is large, so other requests go on meanwhile.

    Each direction reads its messages one at a time, in order, as before.
    """
    if len(text) > LARGE_BODY_BYTES:
        return await asyncio.to_thread(read, text, *args)
    return read(text, *args)


def examined(text: str, find_first_token: bool, limit: int) -> tuple[bool, object, bool]:
    """A provider message: whether it is the first output delta, its event if it may carry usage or
    end an answer, and whether it was too large to read."""
    first_token = find_first_token and _FIRST_TOKEN.search(text) is not None and _DELTA_CONTENT.search(text) is not None
    if not any(marker in text for marker in _EVENT_MARKERS) and "\\u00" not in text:  # its type may be escaped
        return first_token, None, False
    event, unread = decoded(text, limit)
    return first_token, event, unread


def decoded(text: str, limit: int) -> tuple[object, bool]:
    """The event ``text`` holds, its long strings left out when it is large; past ``limit`` characters
    only its top-level ``type`` and ``model`` (and True: the rest was not read)."""
    if len(text) > limit:
        return _scanned(text.encode()), True
    if len(text) > LARGE_BODY_BYTES:
        return decode_json(without_long_strings(text, LONGEST_READ_STRING)), False
    return decode_json(text), False


def _scanned(body: bytes) -> dict[str, object]:
    """A message too large to decode: its top-level ``type`` and ``model``, and the status of the answer
    it ends, from its type (Responses) or from its ``response`` object's own ``status`` (Realtime)."""
    found = top_level_values(body, (b'"type"', b'"model"'))
    event: dict[str, object] = {key.decode().strip('"'): value for key, value in found.items()}
    kind = event.get("type")
    status = _FAILED_BY_TYPE.get(kind) if isinstance(kind, str) else None
    start = top_level_value_starts(body, (b'"response"',)).get(b'"response"')
    if isinstance(kind, str) and kind.startswith("response.") and start is not None:  # Realtime: its id pairs it
        found = top_level_values(body[start:], (b'"status"', b'"id"', b'"conversation_id"'))
        response = {"id": found.get(b'"id"'), "status": found.get(b'"status"') if kind == "response.done" else status}
        response = {key: value for key, value in response.items() if value is not None}
        if b'"conversation_id"' in found:  # null (or no string): out of band
            response["conversation_id"] = found[b'"conversation_id"']
        event["response"] = response
    elif status is not None:
        event["response"] = {"status": status}
    return event


async def to_the_end(read: Coroutine[Any, Any, None]) -> None:
    """Finish reading a message the client was sent, even when the relay is cancelled meanwhile (the
    client left): a large one is read in a thread, and its answer's end must not be lost."""
    reading = asyncio.ensure_future(read)
    try:
        await asyncio.shield(reading)
    except asyncio.CancelledError:
        await reading
        raise
