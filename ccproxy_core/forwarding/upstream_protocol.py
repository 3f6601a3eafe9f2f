"""aiohttp's connection protocol, made to end a body whose framing breaks and to refuse answers nobody asked for.

When a provider's chunked framing breaks in the middle of a body (a chunk size that is not
hex), aiohttp closes the connection and puts the parse error on the connection's queue of
answers, not on the body being read, and drops its read timeout: a read of that body then
waits forever, and so does the client's stream. This protocol also puts the error on the
body, so the read ends at once with ``ClientPayloadError`` and the exchange is recorded as a
stream the provider broke off.

A kept-alive connection waits in the pool between requests. aiohttp parses whatever arrives
on it meanwhile and queues it, and the next request sent on that connection took the queued
bytes for its answer: another client's request was answered, and recorded, with them. Bytes
that arrive while no request waits on the connection close it instead; the pool then opens a
new one for the next request.

aiohttp restarts its read timer whenever it resumes reading a connection it paused (its buffer
was full: the client read slower than the provider wrote), also after the answer has ended. The
timer then ran on the idle connection in the pool and put a timeout on it, which the next
request sent on it raised at once: a 504 ``upstream_timeout`` for a request no provider saw. A
connection whose answer was read to its end runs no read timer.

aiohttp's parser drops every answer it parsed from one read when a later byte of that read breaks
HTTP: a provider that wrote stray bytes after a whole answer (its ``Content-Length`` says where it
ends) had its answer, billed, turned into a 502 without usage, which the SDKs then retried. Until
the answer's head has arrived, each head is handed to the parser in a read of its own.

An answer that can have no body (1xx, 204, 205, 304) but declares one (a length, a transfer
coding) breaks HTTP's framing: the bytes its sender writes after the head are no answer, and a
request sent on the connection before they arrive would take them for its own. Its connection
is closed once it has been read, never handed to another request.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError

from ccproxy_core.safe_values import library_reason


class UpstreamProtocol(ResponseHandler):
    """``ResponseHandler`` whose parse errors also end the body being read, and that closes
    its connection when bytes arrive after the answer was read and before another request."""

    _asked = False
    """A request was sent (or is being sent) and its answer has not been read to its end."""
    _head_awaited = False
    """A request was sent and the head of its (final) answer has not arrived."""
    _head_tail = b""
    """The last bytes read while a head is awaited: its blank line may be cut between two reads."""

    def set_response_params(self, **params: Any) -> None:
        """aiohttp calls it before it sends each request on this connection."""
        self._asked = self._head_awaited = True
        self._head_tail = b""
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        if data and not self._asked and not self._upgraded and self._payload_parser is None:
            self.force_close()
            if self.transport is not None:
                self.transport.close()
            return
        if self._head_awaited and data and not self._upgraded:
            fed = self._feed_heads_apart(data)
            if fed is None:
                return
            data = data[fed:] if fed else data
        super().data_received(data)

    def _feed_heads_apart(self, data: bytes) -> int | None:
        """Feed the parser each answer head of ``data`` in a read of its own, where bytes may follow the
        answer in the same read; the bytes fed, or ``None`` when a head broke HTTP (the rest unread)."""
        tail, fed = self._head_tail, 0
        # A blank line cut between the last read and this one: found in those few bytes, not in a copy of all.
        across = (tail + data[:3]).find(b"\r\n\r\n") if tail else -1
        across = across + 4 - len(tail) if across >= 0 else -1
        while self._head_awaited:
            if across > 0:
                head_end, across = across, -1
            elif (found := data.find(b"\r\n\r\n", fed)) >= 0:
                head_end = found + 4
            else:
                break
            if head_end >= len(data) or not self._may_hold_more(data, fed, head_end):
                break  # each read costs aiohttp a timer reset: a read is split only when it must be
            super().data_received(data[fed:head_end])  # the parser's state carries over: any split parses alike
            fed = head_end
            if self.exception() is not None:  # that head broke HTTP: the connection is closed, the rest unread
                return None
        self._head_tail = (data[-3:] if len(data) >= 3 else (tail + data)[-3:]) if self._head_awaited else b""
        return fed

    def _may_hold_more(self, data: bytes, start: int, head_end: int) -> bool:
        """Whether bytes may follow, in ``data``, the end of the answer whose head is ``data[start:head_end]``:
        an interim or bodiless answer's, a body longer than its length, a chunked body whose last chunk is
        not at the end of ``data``, or a head begun in an earlier read. A false yes only costs a split."""
        if self._skip_payload or not data.startswith(b"HTTP/1.", start):
            return True
        status = data[start + 9 : start + 12]
        if status[:1] == b"1" or status in (b"204", b"205", b"304"):
            return True
        length = _LENGTH.search(data, start, head_end)
        if length is not None:
            return len(data) - head_end > int(length[1])
        last_chunk = data.find(b"0\r\n\r\n", head_end)
        return last_chunk >= 0 and last_chunk + 5 < len(data)

    def resume_reading(self, resume_parser: bool = True) -> None:
        super().resume_reading(resume_parser)
        if not self._asked:  # its answer has ended: no read is awaited, so no read is late
            self._drop_timeout()

    def feed_data(self, data: Any, size: int = 0) -> None:
        """aiohttp queues each answer it parsed here, its body still arriving or whole."""
        super().feed_data(data, size)
        head, body = data
        if head.code in _NO_BODY and _declares_a_body(head.headers):
            self.force_close()
        if head.code == 101 or not 100 <= head.code < 200:  # else interim (100 Continue): the real one follows
            self._head_awaited = False
        if not 100 <= head.code < 200:
            body.on_eof(self._answer_read)

    def _answer_read(self) -> None:
        self._asked = False

    def set_exception(self, exc: BaseException, *cause: Any) -> None:
        body = self._payload
        super().set_exception(exc, *cause)
        # Only a parse error: aiohttp puts its own read timeout on the body itself.
        if isinstance(exc, HttpProcessingError) and body is not None and not body.is_eof() and body.exception() is None:
            body.set_exception(aiohttp.ClientPayloadError(f"the answer's framing broke: {library_reason(str(exc))}"))


_NO_BODY = frozenset({*range(100, 200), 204, 205, 304})
_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,18})[ \t]*\r\n", re.IGNORECASE)


def _declares_a_body(headers: Any) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def use_upstream_protocol(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` open its connections with :class:`UpstreamProtocol`."""
    # aiohttp has no public hook for the protocol class; the attribute is its own factory.
    connector._factory = functools.partial(UpstreamProtocol, loop=connector._loop)  # type: ignore[assignment]
