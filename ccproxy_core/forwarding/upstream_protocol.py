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
that arrive while no request waits on the connection close it instead (also when they come in the
read that ended the answer asked for: an answer parsed then is never queued); the pool then opens a
new one for the next request.

aiohttp restarts its read timer whenever it resumes reading a connection it paused (its buffer
was full: the client read slower than the provider wrote), also after the answer has ended. The
timer then ran on the idle connection in the pool and put a timeout on it, which the next
request sent on it raised at once: a 504 ``upstream_timeout`` for a request no provider saw. A
connection whose answer was read to its end runs no read timer.

aiohttp's parser drops every answer it parsed from one read when a later byte of that read breaks
HTTP: a provider that wrote stray bytes after a whole answer (its ``Content-Length`` says where it
ends) had its answer, billed, turned into a 502 without usage, which the SDKs then retried. What
arrived before the answer's head was read is kept; when the parser fails on it, a fresh parser
reads it again with each head in a read of its own, so the answer is read and only the bytes
after it fail (kept, and read again, only on that failure: every answer would pay for a check).

An answer that can have no body (1xx, 204, 205, 304) but declares one (a length, a transfer
coding) breaks HTTP's framing: the bytes its sender writes after the head are no answer, and a
request sent on the connection before they arrive would take them for its own. Its connection
is closed once it has been read, never handed to another request.
"""

from __future__ import annotations

import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError

from ccproxy_core.error_lines import library_reason


class UpstreamProtocol(ResponseHandler):
    """``ResponseHandler`` whose parse errors also end the body being read, and that closes
    its connection when bytes arrive after the answer was read and before another request."""

    _asked = False
    """A request was sent (or is being sent) and its answer has not been read to its end."""
    _head_awaited = False
    """A request was sent and the head of its (final) answer has not arrived."""
    _before_head: bytes | bytearray = b""
    """What arrived since the request was sent, while its answer's head is awaited: read again on a failure."""
    _params: dict[str, Any] = {}  # noqa: RUF012 (each connection sets its own)
    _reading_again = False

    def set_response_params(self, **params: Any) -> None:
        """aiohttp calls it before it sends each request on this connection."""
        self._asked = self._head_awaited = True
        self._before_head, self._params = b"", params
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        if data and not self._asked and not self._upgraded and self._payload_parser is None:
            return self._close()
        if self._head_awaited and not self._upgraded:
            kept = self._before_head
            if not kept:
                self._before_head = data  # nearly always the whole head in one read: kept without a copy
            elif isinstance(kept, bytearray):
                kept += data  # a head in many reads: added to in place, never copied whole for each
            else:
                self._before_head = bytearray(kept) + data
        super().data_received(data)

    def _close(self) -> None:
        """Close the connection at once: it answers no other request."""
        self.force_close()
        if self.transport is not None:
            self.transport.close()

    def _read_again(self) -> None:
        """Read what came since the request was sent with a fresh parser, each head on its own (the parser
        that failed dropped the answers it had read): its failure, if any, takes the first one's place."""
        data, self._before_head, self._reading_again = bytes(self._before_head), b"", True
        self.force_close()  # the failed read closed the connection: it serves no other request
        try:
            ResponseHandler.set_response_params(self, **self._params)
            fed = 0
            while self._head_awaited and (end := data.find(b"\r\n\r\n", fed)) >= 0:
                ResponseHandler.data_received(self, data[fed : end + 4])  # any split parses alike
                fed = end + 4
                if self.exception() is not None:  # the head itself broke HTTP: that is the failure
                    return
            ResponseHandler.data_received(self, data[fed:])  # the body, and what broke HTTP after it
        finally:
            self._reading_again = False

    def resume_reading(self, resume_parser: bool = True) -> None:
        super().resume_reading(resume_parser)
        if not self._asked:  # its answer has ended: no read is awaited, so no read is late
            self._drop_timeout()

    def feed_data(self, data: Any, size: int = 0) -> None:
        """aiohttp queues each answer it parsed here, its body still arriving or whole."""
        if not self._asked:  # parsed from the read that ended the answer asked for: the connection is done
            return self._close()
        super().feed_data(data, size)
        head, body = data
        if head.code in _NO_BODY and _declares_a_body(head.headers):
            self.force_close()
        if head.code == 101 or not 100 <= head.code < 200:  # else interim (100 Continue): the real one follows
            self._head_awaited, self._before_head = False, b""
        if not 100 <= head.code < 200:
            body.on_eof(self._answer_read)

    def _answer_read(self) -> None:
        self._asked = False

    def set_exception(self, exc: BaseException, *cause: Any) -> None:
        if isinstance(exc, HttpProcessingError) and self._before_head and not self._reading_again:
            return self._read_again()
        body = self._payload
        super().set_exception(exc, *cause)
        # Only a parse error: aiohttp puts its own read timeout on the body itself.
        if isinstance(exc, HttpProcessingError) and body is not None and not body.is_eof() and body.exception() is None:
            body.set_exception(aiohttp.ClientPayloadError(f"the answer's framing broke: {library_reason(str(exc))}"))


_NO_BODY = frozenset({*range(100, 200), 204, 205, 304})


def _declares_a_body(headers: Any) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def use_upstream_protocol(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` open its connections with :class:`UpstreamProtocol`."""
    # aiohttp has no public hook for the protocol class; the attribute is its own factory.
    connector._factory = functools.partial(UpstreamProtocol, loop=connector._loop)  # type: ignore[assignment]
