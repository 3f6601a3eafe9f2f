"""Sending the provider's answer back unchanged while reading it on the side.

Two ways out: a whole body (a JSON answer, an error, ccproxy's own error) and a
server-sent-event stream passed on chunk by chunk as it arrives. Both send the provider's
bytes as they came, compressed or not, with raw header lists (a provider may repeat a
header); a compressed answer is decoded on the side, within a bound, only to be read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import aiohttp
from starlette.types import Receive, Send

from ccproxy_core.accounting.usage import Usage
from ccproxy_core.error_lines import library_reason
from ccproxy_core.forwarding.decoding import BodyDecoder, DecodingFailed
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.receive_probe import ready_message
from ccproxy_core.forwarding.response_headers import CCPROXY_REQUEST_ID_HEADER
from ccproxy_core.providers.base import StreamState

log = logging.getLogger("ccproxy.proxy")

OVERHEAD_HEADER = b"x-ccproxy-overhead-ms"


def _overhead_header(exchange: Exchange, now: float) -> tuple[bytes, bytes]:
    return OVERHEAD_HEADER, f"{exchange.overhead_ms(now):.3f}".encode()


async def send_whole(
    send: Send, exchange: Exchange, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Send a whole body with the headers given, plus its length and ccproxy's overhead."""
    now = time.perf_counter()
    exchange.response_started_at = now
    exchange.response_bytes = len(body)
    exchange.client_status = status
    length = [] if status in (204, 304) else [(b"content-length", str(len(body)).encode())]  # RFC 9110 8.6
    all_headers = [*headers, *length, _overhead_header(exchange, now)]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def answer_cut_request(exchange: Exchange, send: Send, cancelled: bool) -> bool:
    """A provider-shaped 503 (shutdown) or 500 (a bug) for a request cut before anything was sent;
    True when it went out and the cancellation it answers is spent."""
    status = 503 if cancelled else 500
    exchange.client_status = status
    error_type = exchange.provider.local_error_type(status)
    message = "ccproxy is shutting down" if cancelled else "ccproxy failed on this request; its record says why"
    body = exchange.provider.error_body(error_type, message, exchange.context.request_id)
    headers = [
        (CCPROXY_REQUEST_ID_HEADER, exchange.context.request_id.encode()),
        (b"content-type", b"application/json"),
        (b"connection", b"close"),
    ]
    try:
        await send_whole(send, exchange, status, headers, body)
    except OSError:  # the connection is gone too (uvicorn raises ClientDisconnected)
        return False
    task = asyncio.current_task()
    return cancelled and task is not None and task.uncancel() == 0


def client_gone(exchange: Exchange, receive: Receive) -> bool:
    """Whether the client hung up while the answer was awaited; if so the exchange is noted 499.

    ``receive()`` is asked without waiting (:func:`ready_message`); a ``receive`` that cannot be
    asked so is taken for a client still there. Call it only once the request body has been read whole.
    """
    message = ready_message(receive)
    gone = message is not None and message.get("type") == "http.disconnect"
    if gone:
        exchange.note_failure("client_disconnected", "the client closed the connection before the answer", 499)
    return gone


class BodyParser(Protocol):
    """Reads an answer while it passes through: ``StreamUsageParser`` (event streams),
    ``BatchResultsParser`` (batch results) or ``PASS_THROUGH`` (a body without usage).
    ``state`` is ``None`` for bodies that are not event streams."""

    @property
    def state(self) -> StreamState | None: ...

    @property
    def lost(self) -> bool:
        """Whether part of the body was too large to read, so what it said is unknown."""
        ...

    def feed(self, chunk: bytes) -> bool: ...

    def result(self) -> Usage: ...

    def final_state(self) -> StreamState | None: ...


class _PassThrough:
    """A body with nothing to read in it (a file's content)."""

    state = None
    lost = False

    def feed(self, chunk: bytes) -> bool:
        return False

    def result(self) -> Usage:
        return Usage()

    def final_state(self) -> None:
        return None


PASS_THROUGH = _PassThrough()


async def relay_stream(
    exchange: Exchange,
    upstream: aiohttp.ClientResponse,
    headers: list[tuple[bytes, bytes]],
    decoder: BodyDecoder | None,
    send: Send,
    receive: Receive,
    parser: BodyParser,
    already_read: list[bytes] | None = None,
) -> None:
    """Pass an answer on as it arrives (an event stream, batch results, a file); read it beside.

    ``already_read`` are chunks of it taken from upstream before it was known to be too large
    to hold: they are sent first.

    A client that goes away closes the upstream request (status 499); an upstream that
    breaks off cuts the client's stream as well, so it cannot mistake a part for the whole.
    """
    # The stream is pumped in this task; a watcher task cancels it when the client goes
    # away (uvicorn drops what is sent after a disconnect, so the pump alone would not notice).
    task = asyncio.current_task()
    if task is None:
        raise RuntimeError("relay_stream must run inside an asyncio task")
    client_left = False

    def on_disconnect(_: asyncio.Future) -> None:
        nonlocal client_left
        if pumping:
            client_left = True
            task.cancel()

    if client_gone(exchange, receive):  # before the answer started: nothing of it is sent
        upstream.close()
        exchange.upstream_done_at = time.perf_counter()
        return
    pumping = True
    watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
    watcher.add_done_callback(on_disconnect)
    try:
        completed = await _pump(exchange, upstream, headers, decoder, send, parser, already_read or [])
    except asyncio.CancelledError:
        if not client_left or task.uncancel() > 0:  # cancelled from outside too: let it be
            raise
        completed = _answer_complete(exchange)
        if not completed:
            exchange.note_failure("client_disconnected", "client closed the connection mid-stream", 499)
    finally:
        pumping = False
        watcher.remove_done_callback(on_disconnect)
        watcher.cancel()
        upstream.close()
        exchange.upstream_done_at = exchange.upstream_done_at or time.perf_counter()
    if not completed and exchange.client_status != 499:
        # Returning without finishing makes the server cut the connection, as the provider did.
        log.warning("upstream stream broke off: %s", exchange.failure.message if exchange.failure else "")


async def _pump(
    exchange: Exchange,
    upstream: aiohttp.ClientResponse,
    headers: list[tuple[bytes, bytes]],
    decoder: BodyDecoder | None,
    send: Send,
    reader: BodyParser,
    already_read: list[bytes],
) -> bool:
    exchange.stream_state = reader.state
    parser: BodyParser | None = reader  # None once the stream can no longer be read
    now = time.perf_counter()
    exchange.response_started_at = now
    exchange.client_status = upstream.status
    await send(
        {
            "type": "http.response.start",
            "status": upstream.status,
            "headers": [*headers, *_declared_length(upstream), _overhead_header(exchange, now)],
        }
    )
    for chunk in already_read:
        exchange.response_bytes += len(chunk)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    already_read.clear()  # not held while the rest passes
    try:
        async for chunk in upstream.content.iter_any():
            received = time.perf_counter()
            if exchange.first_byte_at is None:
                exchange.first_byte_at = received
            # Send first, so the chunk travels while it is read (in ``finally``: a chunk
            # whose sending was cut short by a disconnect still counts).
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            finally:
                exchange.response_bytes += len(chunk)
                if parser is not None and decoder is not None:
                    parser = await _read_decoded(exchange, parser, decoder, chunk, received)
                elif parser is not None:
                    parser = _read_chunk(exchange, parser, chunk, received)
    except (TimeoutError, aiohttp.ClientError) as exc:
        if not _ended_before_break(parser):
            if isinstance(exc, asyncio.TimeoutError):  # worded as for an answer read whole
                exchange.note_failure("upstream_timeout", "the provider stopped sending its answer")
            else:
                exchange.note_failure("upstream_stream_aborted", describe_exception(exc))
            return False
    finally:
        exchange.upstream_done_at = time.perf_counter()
        if parser is not None:
            exchange.usage = parser.result()
            exchange.stream_state = parser.final_state()
            # An event too large to read was skipped: what it said (usage, maybe the end) is unknown.
            exchange.accounting_lost = exchange.accounting_lost or parser.lost
    # The client reads to the end now, where its SDK refuses a zstd frame left open (not if it hung up first).
    exchange.cut_mid_frame = parser is not None and decoder is not None and decoder.cut_mid_frame
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    return True


def _declared_length(upstream: aiohttp.ClientResponse) -> list[tuple[bytes, bytes]]:
    """The provider's ``Content-Length`` of an answer passed on as it arrives (a file, audio), so the
    client knows its size and can tell a cut one; an event stream goes chunked, as it is ended by its
    last event (one cut after that event still ends cleanly for the client)."""
    length = upstream.content_length
    if length is None or upstream.content_type == "text/event-stream" or upstream.status in (204, 304):
        return []
    if "chunked" in upstream.headers.get("transfer-encoding", "").lower():
        return []
    return [(b"content-length", str(length).encode())]


_FEED_STEP = 256 * 1024
"""Decoded bytes read at once: a compressed chunk may stand for megabytes, read a step at a time
with other requests served between the steps (32 MiB of SSE comments took 0.4 s in one go)."""


async def _read_decoded(
    exchange: Exchange, parser: BodyParser, decoder: BodyDecoder, chunk: bytes, received: float
) -> BodyParser | None:
    """Decode one chunk of a compressed answer and read what it stands for, a step at a time with other
    requests served between the steps; ``None`` once the stream can no longer be read (not valid data of
    its encoding, or decoded past the limit).

    The chunk was sent to the client already: a cancel (the client gone) between the steps is raised once
    the chunk is read, as a client may read the last event and hang up at once, and has the whole answer.
    """
    pauses = _Pauses()
    parser_after = await _read_decoded_steps(exchange, parser, decoder, chunk, received, pauses)
    if pauses.cancelled:
        raise asyncio.CancelledError
    return parser_after


class _Pauses:
    """Lets other requests run between decoding steps, and keeps a cancel met there for after the chunk."""

    cancelled = False

    async def between_steps(self) -> None:
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            self.cancelled = True


async def _read_decoded_steps(
    exchange: Exchange, parser: BodyParser, decoder: BodyDecoder, chunk: bytes, received: float, pauses: _Pauses
) -> BodyParser | None:
    while True:
        try:
            decoded = decoder.decode_step(chunk)
        except DecodingFailed as exc:
            decoded = b""
            decoder.over_limit = True
            exchange.note_failure(exc.error_type, exc.describe())
        if decoder.over_limit:
            exchange.usage = parser.result()
            exchange.accounting_lost = True
            return None
        for start in range(0, len(decoded), _FEED_STEP):
            if start:
                await pauses.between_steps()
            if _read_chunk(exchange, parser, decoded[start : start + _FEED_STEP], received) is None:
                return None
        if not decoder.pending:
            return parser
        chunk = b""
        await pauses.between_steps()


def _read_chunk(exchange: Exchange, parser: BodyParser, chunk: bytes, received: float) -> BodyParser | None:
    """Feed one chunk to the parser; ``None`` once the stream can no longer be read."""
    try:
        first_token = parser.feed(chunk)
    except Exception:  # a reader's mistake over odd bytes must never cost the client its answer
        log.exception("could not read the answer of request %s for its usage", exchange.context.request_id)
        exchange.accounting_lost = True
        return None
    if first_token and exchange.first_token_at is None:
        exchange.first_token_at = received
    return parser


def _ended_before_break(parser: BodyParser | None) -> bool:
    """Whether a stream that broke off had already carried the provider's last event, whole (ended by
    its blank line): then the answer is whole (the provider bills it, the SDKs read it) and the
    client's stream ends cleanly."""
    state = parser.state if parser is not None else None
    return state is not None and state.terminal_seen


def _answer_complete(exchange: Exchange) -> bool:
    """Whether the client had all it could read of the answer before it hung up: its terminal event, or
    an event its SDK cannot decode (the SDKs raise on it and close the connection).

    Clients (Codex CLI) may close the connection as soon as they read the last event, before the
    provider closes its side: that is a finished answer, not a client that left.
    """
    state = exchange.stream_state
    return state is not None and (state.terminal_seen or state.unreadable)


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def describe_exception(exc: BaseException) -> str:
    """``exc`` as a record's error message names it: its type, and what it says if anything."""
    return f"{type(exc).__name__}: {library_reason(str(exc))}" if str(exc) else type(exc).__name__
