"""Heavy /logs reads kept away from proxied traffic: few at a time, and never one long hold of the loop.

Eight clients asking for 10,000 rows each used to hold the event loop long enough to add
hundreds of milliseconds to proxied requests: FastAPI encodes a returned dict on the loop in
one go. Here reads queue for a turn (OBSERVABILITY__LOGS_CONCURRENT_READS at once). A store that encodes rows itself
(:class:`~ccproxy_core.plugin_host.log_store.EncodedRowReads`) hands over byte slices that are
sent as they are; otherwise the store's dicts are encoded a slice of rows at a time, the loop
serving proxied requests between slices.

A page (up to 16 MiB) is held until it is sent. A client that stops reading it would hold it for
as long as it keeps its connection open: a write that waits SERVER__SEND_TIMEOUT_SECONDS closes the
connection and lets the page go, as the proxy does for answers. Meanwhile the pages held for all
clients together stay under OBSERVABILITY__LOGS_MAX_UNSENT_BYTES: a read that finds that much held
is refused with 503 at its turn, and an answer that would pass it when its first byte is due is let go
and refused so too, so a crowd of clients that ask and never read cannot grow the process's memory
without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.plugin_host.log_store import EncodedRows

from .settings import LogsApiSettings

ROWS_PER_SLICE = 100
"""Rows encoded between two turns of the event loop (well under a millisecond)."""
_GATE_ATTRIBUTE = "ccproxy_logs_read_gate"
_HELD_ATTRIBUTE = "ccproxy_logs_unsent"


class _UnsentBytes:
    """The bytes of /logs answers built and not yet sent, all clients together."""

    def __init__(self) -> None:
        self.held = 0


async def read_slot(request: Request) -> AsyncIterator[None]:
    """FastAPI dependency (``scope="function"``): hold one of the app's read turns while the route runs.

    The turn covers the store's work and the encoding, never the sending: the routes return the
    encoded answer (at most a page, see :data:`ccproxy_duckdb.json_rows.PAGE_BYTES`), and it is sent
    after the turn is given back, however slowly the client reads.
    """
    settings = host_of(request.app).settings_of(LogsApiSettings)
    gate = getattr(request.app.state, _GATE_ATTRIBUTE, None)
    if gate is None:
        gate = asyncio.Semaphore(settings.logs_concurrent_reads)
        setattr(request.app.state, _GATE_ATTRIBUTE, gate)
    async with gate:
        if (held := _unsent(request.app.state).held) >= settings.logs_max_unsent_bytes:
            raise HTTPException(status_code=503, detail=_busy_detail(held), headers=_RETRY_AFTER)
        yield


_RETRY_AFTER = {"retry-after": "5"}


def _busy_detail(held: int) -> str:
    return (
        f"{held} bytes of /logs answers are still being sent to clients that read them slowly "
        "(OBSERVABILITY__LOGS_MAX_UNSENT_BYTES): retry in a moment"
    )


def _unsent(state: Any) -> _UnsentBytes:
    unsent = getattr(state, _HELD_ATTRIBUTE, None)
    if unsent is None:
        unsent = _UnsentBytes()
        setattr(state, _HELD_ATTRIBUTE, unsent)
    return unsent


async def rows_answer(rows: list[dict[str, Any]] | EncodedRows, rest: dict[str, Any], key: str = "results") -> Response:
    """``{key: rows, **rest}`` as a JSON response, whichever form the store gave the rows in."""
    if isinstance(rows, EncodedRows):
        return encoded_answer(rows, rest, key)
    return await json_answer({key: rows, **rest}, key)


def encoded_answer(rows: EncodedRows, rest: dict[str, Any], key: str = "results") -> Response:
    """``{key: [...], **rest}`` around rows a store encoded, sent a slice at a time without joining them."""
    parts = [b"{" + _dumps(key).encode() + b":["]
    for index, piece in enumerate(rows.slices):
        parts += [b",", piece] if index else [piece]
    parts.append(b"]" + (b"," + _dumps(rest)[1:].encode() if rest else b"}"))
    return PageAnswer(parts)


async def json_answer(payload: dict[str, Any], key: str = "results") -> Response:
    """``payload`` as a JSON response; a long list under ``key`` is encoded a slice at a time.

    On the event loop, not in a thread: between slices the loop serves whatever is ready
    (proxied requests first in line), whereas a thread would compete with it for the GIL
    and win a share of every switch interval.
    """
    rows = payload.get(key)
    if not isinstance(rows, list) or len(rows) <= ROWS_PER_SLICE:
        return PageAnswer([_dumps(payload).encode()])
    rest = _dumps({name: value for name, value in payload.items() if name != key})
    parts = [("{" + _dumps(key) + ":[").encode()]
    for start in range(0, len(rows), ROWS_PER_SLICE):
        parts.append((b"," if start else b"") + _dumps(rows[start : start + ROWS_PER_SLICE])[1:-1].encode())
        await asyncio.sleep(0)
    parts.append(("]" + ("," if rest != "{}" else "") + rest[1:]).encode())
    return PageAnswer(parts)


class PageAnswer(Response):
    """A JSON answer sent as its parts, each write within SERVER__SEND_TIMEOUT_SECONDS or the connection closed.

    Its bytes count among those held for clients from its first write to its last; one that would take
    them past OBSERVABILITY__LOGS_MAX_UNSENT_BYTES while others are held is let go and answered 503 instead
    (the check at the read's turn cannot see the pages of reads that finished since)."""

    media_type = "application/json"

    def __init__(self, parts: list[bytes]) -> None:
        super().__init__(headers={"content-length": str(sum(len(part) for part in parts))})
        self.parts = parts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        host = host_of(scope["app"])
        limit, loop = host.settings.server.send_timeout_seconds, asyncio.get_running_loop()
        unsent, size = _unsent(scope["app"].state), sum(len(part) for part in self.parts)
        if unsent.held and unsent.held + size > host.settings_of(LogsApiSettings).logs_max_unsent_bytes:
            self.parts = []
            busy = JSONResponse({"detail": _busy_detail(unsent.held)}, status_code=503, headers=_RETRY_AFTER)
            return await busy(scope, receive, send)
        pieces, self.parts = _pieces(self.parts), []
        unsent.held += size
        try:
            async with asyncio.timeout(limit) as deadline:
                await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                for piece, last in pieces:
                    deadline.reschedule(loop.time() + limit)
                    await send({"type": "http.response.body", "body": piece, "more_body": not last})
        except TimeoutError:
            _log.info(
                "a /logs client read nothing of its answer for SERVER__SEND_TIMEOUT_SECONDS=%g; its connection "
                "was closed",
                limit,
            )
        except OSError:  # the client has gone
            pass
        finally:
            unsent.held -= size


_log = logging.getLogger("ccproxy.logs_api")
PIECE_BYTES = 64 * 1024
"""Bytes per write: a write waits for the client to take about this much, so a slow but steady reader is
never taken for one that stopped (a write of a whole 1 MB part waited for all of it)."""


def _pieces(parts: list[bytes]) -> Iterator[tuple[bytes, bool]]:
    """The parts as pieces of at most :data:`PIECE_BYTES`, each with whether it is the last; each part is let go
    once its last piece is taken."""
    while parts:
        part = parts.pop(0)
        for start in range(0, len(part), PIECE_BYTES):
            end = start + PIECE_BYTES
            yield part[start:end], not parts and end >= len(part)
        if not part:
            yield part, not parts


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)
