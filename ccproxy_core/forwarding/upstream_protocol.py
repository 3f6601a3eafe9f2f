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

    def set_response_params(self, **params: Any) -> None:
        """aiohttp calls it before it sends each request on this connection."""
        self._asked = self._head_awaited = True
        super().set_response_params(**params)

    def data_received(self, data: bytes) -> None:
        if data and not self._asked and not self._upgraded and self._payload_parser is None:
            self.force_close()
            if self.transport is not None:
                self.transport.close()
            return
        while self._head_awaited:
            head_end = data.find(b"\r\n\r\n") + 4
            if not 4 <= head_end < len(data):
                break
            super().data_received(data[:head_end])  # the parser's state carries over: any split parses alike
            data = data[head_end:]
            if self.exception() is not None:  # that head broke HTTP: the connection is closed, the rest unread
                return
        super().data_received(data)

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
        if not 100 <= head.code < 200:  # an interim answer (100 Continue): the real one is still to come
            self._head_awaited = False
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


def _declares_a_body(headers: Any) -> bool:
    return "transfer-encoding" in headers or headers.get("content-length", "0").strip() not in ("", "0")


def use_upstream_protocol(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` open its connections with :class:`UpstreamProtocol`."""
    # aiohttp has no public hook for the protocol class; the attribute is its own factory.
    connector._factory = functools.partial(UpstreamProtocol, loop=connector._loop)  # type: ignore[assignment]
