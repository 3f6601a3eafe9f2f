"""Request bodies read with one copy, and large ones searched for their model without building them.

A 30 MB request body used to cost three copies at once (the chunks, their join, and the
decoded JSON tree ``json.loads`` builds to find two top-level keys) and hold the event loop
for the whole decode. Here a body with a ``Content-Length`` is read into one buffer of that
size, and a body over :data:`LARGE_BODY_BYTES` is scanned for its top-level ``model`` and
``stream``, and the few small values attribution reads, in a worker thread: strings are skipped
whole by ``bytes.find``, only the values of those keys are decoded, and the thread hands the GIL
back as it goes. The scan's work is linear in the body and capped by :data:`MAX_SCANNED_TOKENS`,
whatever the body holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect, Request

from ccproxy_core.accounting.attribution.sessions import BODY_FIELDS
from ccproxy_core.accounting.usage import model_and_stream, names_model_in_other_cases, request_payload
from ccproxy_core.forwarding.decoding import decode_whole, is_encoded
from ccproxy_core.forwarding.form_boundary import form_boundary
from ccproxy_core.forwarding.form_fields import form_model_and_stream, query_names_a_field
from ccproxy_core.forwarding.receive_probe import ready_message

if TYPE_CHECKING:
    from ccproxy_core.runtime.settings import ServerSettings

log = logging.getLogger("ccproxy.proxy")

LARGE_BODY_BYTES = 1024 * 1024
"""Bodies larger than this are scanned in a thread rather than decoded on the event loop."""
FORM_ON_LOOP_BYTES = 64 * 1024
"""Forms larger than this are read in a thread: a form's search costs more per byte than a JSON
decode (a MiB of lines that begin like its boundary took 160 ms)."""
MAX_SCANNED_TOKENS = 500_000
"""A body with more strings, brackets and escaped quotes than this is not searched further: its model
stays unknown, even one met before, as a later copy could name another (the body is still forwarded).
Real requests stay far below: a 30 MB conversation of 1 KB messages has some 200,000."""

_STRUCTURAL = re.compile(rb'["{}\[\]]')
_QUOTE, _BACKSLASH = 0x22, 0x5C
_MODEL, _STREAM = b'"model"', b'"stream"'
_KEYS = (_MODEL, _STREAM, *(json.dumps(name).encode() for name in BODY_FIELDS))
_VALUE_AFTER_COLON = re.compile(rb"\s*+:\s*+")
_MODEL_VALUE_BYTES = 4096
_ATTRIBUTION_VALUE_BYTES = 65536
"""An attribution value (an id, or a ``metadata`` object of a few) that does not end this far from its
start is left out of a large body's payload: no id is that long, and only its own bytes are decoded."""
_DECODER = json.JSONDecoder()
_SCAN_SPENT = b""
"""What the key scan yields, in place of a key, when its budget ran out before the object's end."""


MIN_BODY_BYTES_PER_SECOND = 1024
"""After its first ``SERVER__BODY_TIMEOUT_SECONDS``, a body must keep arriving at this average rate (each
byte buys the client more time): a byte now and then cannot hold a connection or the body budget."""
CONTENDED_BODY_BYTES_PER_SECOND = 64 * 1024
"""The average rate while another request waits for room in the body budget: a body trickling at 2 KiB a
second would hold the room of one as large as allowed (32 MiB) for hours, refusing every other large one."""


class BodyTimeout(Exception):
    """The client stopped sending its request body, or sent it too slowly, for longer than allowed."""


def body_timeout_message(server: ServerSettings) -> str:
    """What the client's 408 says, naming the setting."""
    slower = f"slower than {MIN_BODY_BYTES_PER_SECOND} bytes a second"
    idle = server.body_timeout_seconds
    return f"the request body stopped arriving for SERVER__BODY_TIMEOUT_SECONDS={idle:g}, or came {slower}"


class _BodyClock:
    """When the next piece of a body is due: within ``idle_seconds`` of the last, and before a
    deadline that starts ``idle_seconds`` away and moves out with every byte received (by less
    while ``contended``: another request waits for body room)."""

    __slots__ = ("idle_seconds", "started", "bytes", "contended")

    def __init__(self, idle_seconds: float, contended: Callable[[], bool]) -> None:
        self.idle_seconds = idle_seconds
        self.started = asyncio.get_running_loop().time()
        self.bytes = 0
        self.contended = contended

    def due(self) -> float:
        rate = CONTENDED_BODY_BYTES_PER_SECOND if self.contended() else MIN_BODY_BYTES_PER_SECOND
        now = asyncio.get_running_loop().time()
        return min(now + self.idle_seconds, self.started + self.idle_seconds + self.bytes / rate)

    def received(self, size: int) -> None:
        self.bytes += size


async def read_body(
    request: Request, server: ServerSettings, contended: Callable[[], bool] = lambda: False
) -> bytes | bytearray | None:
    """The request body, or ``None`` when it is larger than SERVER__MAX_REQUEST_BYTES.

    A body that stops arriving for SERVER__BODY_TIMEOUT_SECONDS, or arrives slower than
    :data:`MIN_BODY_BYTES_PER_SECOND` once they have passed (:data:`CONTENDED_BODY_BYTES_PER_SECOND` while
    ``contended()``), raises :class:`BodyTimeout`: it would otherwise hold its connection, and a large one
    its room in the shared body budget, for ever.
    """
    limit, idle_seconds = server.max_request_bytes, server.body_timeout_seconds
    declared = request.headers.get("content-length", "")
    clock = _BodyClock(idle_seconds, contended)
    if declared.isascii() and declared.isdigit() and len(declared) < 19:
        if int(declared) > limit:
            return None
        if int(declared) > 65536:
            return await _read_declared(request, int(declared), limit, clock)
    chunks, size = [], 0
    while True:
        chunk, more = await _next_chunk(request, clock)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not more:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _read_declared(request: Request, declared: int, limit: int, clock: _BodyClock) -> bytearray | None:
    buffer, filled = bytearray(declared), 0
    while True:
        chunk, more = await _next_chunk(request, clock)
        end = filled + len(chunk)
        if end > declared:  # more than announced: uvicorn would refuse it, but never overrun
            return None if end > limit else buffer[:filled] + chunk
        buffer[filled:end] = chunk
        filled = end
        if not more:
            return buffer if filled == declared else buffer[:filled]


async def _next_chunk(request: Request, clock: _BodyClock) -> tuple[bytes, bool]:
    # ASGI receive() directly: Starlette's request.stream() generator costs more than the copy. A body
    # already there (nearly always) is taken without a timer, which would cost more than the rest.
    message = ready_message(request.receive)
    if message is None:
        try:
            async with asyncio.timeout_at(clock.due()):
                message = await request.receive()
        except TimeoutError:
            raise BodyTimeout from None
    if message["type"] == "http.disconnect":
        raise ClientDisconnect()
    body = message.get("body", b"")
    clock.received(len(body))
    return body, message.get("more_body", False)


async def request_fields(
    body: bytes | bytearray,
    content_type: str | None = None,
    content_encoding: str | None = None,
    decoded_limit: int = 0,
    query: bytes = b"",
) -> tuple[dict[str, Any] | None, str | None, bool]:
    """The decoded request body (for attribution), its top-level ``model`` and ``stream`` (the form
    fields of a multipart upload, whose ``content_type`` names its boundary; unknown when the URL's
    ``query`` gives either too).

    A body up to :data:`LARGE_BODY_BYTES` is decoded once and shared; a larger one is only
    scanned (:func:`scan_request`), its payload then holding only the values attribution reads.
    A compressed body (``content_encoding``) is read from a copy decompressed in a worker thread, up to
    ``decoded_limit`` bytes; beyond that, or in an encoding ccproxy cannot read, its fields are unknown.
    """
    if not body:
        return None, None, False
    try:
        return await _read_fields(body, content_type, content_encoding, decoded_limit, query)
    except Exception:
        # Reading them is for the record: a body no reader expected costs its model, never the request.
        log.exception("could not read the request body's model and stream; forwarding it with them unknown")
        return None, None, False


async def _read_fields(
    body: bytes | bytearray, content_type: str | None, content_encoding: str | None, decoded_limit: int, query: bytes
) -> tuple[dict[str, Any] | None, str | None, bool]:
    if content_encoding is not None and is_encoded(content_encoding):
        decoded = await asyncio.to_thread(decode_whole, body, content_encoding, decoded_limit)
        if decoded is None:
            return None, None, False
        body = decoded
    boundary = form_boundary(content_type)
    if boundary is not None:  # a multipart form: uploads of audio and images
        if query_names_a_field(query):
            return None, None, False
        if len(body) <= FORM_ON_LOOP_BYTES:
            return (None, *form_model_and_stream(body, boundary))
        return (None, *await asyncio.to_thread(form_model_and_stream, body, boundary))
    if len(body) <= LARGE_BODY_BYTES:
        payload = request_payload(body)
        model, streaming = model_and_stream(payload)
        if names_model_in_other_cases(payload):
            model = model_every_reader_takes(body)
        return payload, model, streaming
    return await asyncio.to_thread(scan_request, body)


def scan_request(body: bytes | bytearray) -> tuple[dict[str, Any], str | None, bool]:
    """A payload of the top-level values attribution reads (:data:`BODY_FIELDS`: ``metadata``,
    ``safety_identifier``, ``user``), and ``model`` and ``stream``, of a JSON object, found in one
    scan without decoding the rest.

    When a key repeats, the last one counts, as in a full decode; the model is the one every reader
    takes (:func:`_model_every_reader_takes`). Only values that end within
    :data:`_ATTRIBUTION_VALUE_BYTES` of their start are decoded, each from its own bytes.
    """
    keys_met = list(_top_level_keys(body, _KEYS, any_case=True))
    model = _model_every_reader_takes(body, keys_met)
    starts = {key: start for key, start in keys_met if key in _KEYS}
    starts.pop(_MODEL, None)
    stream_start = starts.pop(_STREAM, None)
    streaming = stream_start is not None and body.startswith(b"true", stream_start)
    payload = {}
    for key, value_start in starts.items():
        value = _small_value_at(body, value_start)
        if value is not None:
            payload[key[1:-1].decode()] = value
    return payload, model, streaming


def model_every_reader_takes(body: bytes | bytearray) -> str | None:
    """The top-level ``model`` of a JSON object that names it in other letter cases too, when
    Python's decoder and Go's read the same one (see :func:`_model_every_reader_takes`)."""
    return _model_every_reader_takes(body, list(_top_level_keys(body, (_MODEL,), any_case=True)))


def _model_every_reader_takes(body: bytes | bytearray, keys_met: list[tuple[bytes, int]]) -> str | None:
    """The model both Python's and Go's JSON decoders read, from the top-level keys met in order; ``None``
    when they read different ones, or the scan stopped before the object's end (a later copy is unseen).

    Python's is the value of the last key written ``model``. Go's ``encoding/json`` matches keys in any
    letter case and leaves a field as it was for ``null``: its is the last such key whose value is not null.
    """
    if any(key == _SCAN_SPENT for key, _start in keys_met):
        return None
    named = [(key, start) for key, start in keys_met if key.lower() == _MODEL]
    python = next((start for key, start in reversed(named) if key == _MODEL), None)
    go = next((start for _key, start in reversed(named) if not body.startswith(b"null", start)), None)
    if python is None or go is None:
        return None
    model = _string_at(body, python)
    return model if python == go or model == _string_at(body, go) else None


def scan_top_level(body: bytes | bytearray) -> tuple[str | None, bool]:
    """``model`` (a non-empty string) and ``stream is True`` of a top-level JSON object, without decoding the rest."""
    _payload, model, streaming = scan_request(body)
    return model, streaming


def top_level_values(body: bytes | bytearray, keys: tuple[bytes, ...]) -> dict[bytes, str | None]:
    """The short string values of ``keys`` (quoted: ``b'"model"'``) in a top-level JSON object (``None`` for
    another value), without decoding the rest; a key given twice keeps its last value, as a decoder would."""
    return {key: _string_at(body, start) for key, start in _top_level_keys(body, keys) if key != _SCAN_SPENT}


def top_level_value_starts(body: bytes | bytearray, keys: tuple[bytes, ...]) -> dict[bytes, int]:
    """Where the value of each of ``keys`` (quoted) starts in a top-level JSON object, found as
    :func:`top_level_values` finds them; a key given twice keeps its last place."""
    return {key: start for key, start in _top_level_keys(body, keys) if key != _SCAN_SPENT}


def _top_level_keys(
    body: bytes | bytearray, keys: tuple[bytes, ...], any_case: bool = False
) -> Iterator[tuple[bytes, int]]:
    """Each of ``keys`` met among the top-level object's keys, with where its value starts, in order;
    with ``any_case``, also a key written in other letter cases (as written).

    Strings are skipped with ``bytes.find`` (a C scan, however long the string); only brackets
    and the keys of the top-level object are looked at. The work is linear in the body and ends
    after :data:`MAX_SCANNED_TOKENS` strings, brackets and escaped quotes, with :data:`_SCAN_SPENT`.
    """
    longest = max(len(key) for key in keys)
    depth, tokens, position = 0, 0, 0
    while True:
        if tokens >= MAX_SCANNED_TOKENS:
            yield _SCAN_SPENT, -1
            return
        match = _STRUCTURAL.search(body, position)
        if match is None:
            return
        tokens, start = tokens + 1, match.start()
        if body[start] == _QUOTE:
            end = body.find(b'"', start + 1)
            if end < 0 or body[end - 1] == _BACKSLASH:  # unclosed, or an escaped quote: the careful way
                closing, hops = _string_end(body, start + 1, MAX_SCANNED_TOKENS - tokens, len(body))
                tokens += hops
                if closing is None:  # never closed, or its escaped quotes spent the budget
                    if tokens >= MAX_SCANNED_TOKENS:
                        yield _SCAN_SPENT, -1
                    return
                end = closing
            position = end + 1
            if (
                depth == 1
                and end - start < 6 * longest
                and ((key := _key_at(body, start, end)) in keys or (any_case and key.lower() in keys))
            ):
                colon = _VALUE_AFTER_COLON.match(body, position)
                if colon is not None:
                    yield key, colon.end()
            continue
        position = start + 1
        if body[start] in b"{[":
            depth += 1
        else:
            depth -= 1
            if depth <= 0:
                return


def _key_at(body: bytes | bytearray, start: int, end: int) -> bytes:
    """The quoted key between ``start`` and ``end`` as it reads once decoded: ``"mod\\u0065l"`` is ``"model"``."""
    key = bytes(body[start : end + 1])
    if b"\\" not in key:
        return key
    try:
        return json.dumps(json.loads(key)).encode()
    except ValueError:
        return key


def _string_end(body: bytes | bytearray, start: int, budget: int, stop: int) -> tuple[int | None, int]:
    """Index of the quote closing the string whose content begins at ``start``, and how many escaped
    quotes were stepped over on the way. The index is ``None`` when no quote closes the string before
    ``stop``, or when ``budget`` escaped quotes were stepped over first."""
    search_from, hops = start, 0
    while True:
        quote = body.find(b'"', search_from, stop)
        if quote < 0:
            return None, hops
        if body[quote - 1] != _BACKSLASH:
            return quote, hops
        # One backslash (the usual escape) needs no counting; the byte before a run is a quote at worst.
        if body[quote - 2] == _BACKSLASH and _backslashes_before(body, quote, search_from) % 2 == 0:
            return quote, hops
        search_from, hops = quote + 1, hops + 1
        if hops >= budget:
            return None, hops


def _backslashes_before(body: bytes | bytearray, index: int, floor: int) -> int:
    """How many backslashes run up to ``index`` (none before ``floor``): counted by ``rstrip`` in
    windows that double, so a run of millions costs a few C calls, not a Python step per byte."""
    count, end, width = 0, index, 64
    while end > floor and body[end - 1] == _BACKSLASH:
        begin = max(floor, end - width)
        piece = body[begin:end]
        run = len(piece) - len(piece.rstrip(b"\\"))
        count += run
        if run < len(piece):
            break
        end, width = begin, width * 2
    return count


def _small_value_at(body: bytes | bytearray, start: int) -> str | dict[str, Any] | None:
    """The non-empty string or the object starting at ``start``, when it ends within
    :data:`_ATTRIBUTION_VALUE_BYTES`; ``None`` for anything else."""
    if not body.startswith(b"{", start):
        return _string_at(body, start, _ATTRIBUTION_VALUE_BYTES)
    window = body[start : start + _ATTRIBUTION_VALUE_BYTES].decode("utf-8", "replace")
    try:
        value, _end = _DECODER.raw_decode(window)  # stops where the object does: the rest of the window is unread
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _string_at(body: bytes | bytearray, start: int, longest: int = _MODEL_VALUE_BYTES) -> str | None:
    """The non-empty string value starting at ``start``; only a short one matters (a model name, an id),
    so one that does not close within ``longest`` bytes counts as none, and only its own bytes are decoded."""
    if start >= len(body) or body[start] != _QUOTE:
        return None
    end, _ = _string_end(body, start + 1, MAX_SCANNED_TOKENS, start + longest)
    if end is None:
        return None
    try:
        value = json.loads(bytes(body[start : end + 1]).decode("utf-8", "replace"))
    except ValueError:
        return None
    return value if isinstance(value, str) and value else None
