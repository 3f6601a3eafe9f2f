"""aiohttp's connection protocol, made to end a body whose framing breaks.

When a provider's chunked framing breaks in the middle of a body (a chunk size that is not
hex), aiohttp closes the connection and puts the parse error on the connection's queue of
answers, not on the body being read, and drops its read timeout: a read of that body then
waits forever, and so does the client's stream. This protocol also puts the error on the
body, so the read ends at once with ``ClientPayloadError`` and the exchange is recorded as a
stream the provider broke off.
"""

from __future__ import annotations

import functools
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.http_exceptions import HttpProcessingError


class UpstreamProtocol(ResponseHandler):
    """``ResponseHandler`` whose parse errors also end the body being read."""

    def set_exception(self, exc: BaseException, *cause: Any) -> None:
        body = self._payload
        super().set_exception(exc, *cause)
        # Only a parse error: aiohttp puts its own read timeout on the body itself.
        if isinstance(exc, HttpProcessingError) and body is not None and not body.is_eof() and body.exception() is None:
            body.set_exception(aiohttp.ClientPayloadError(f"the answer's framing broke: {exc}"))


def use_upstream_protocol(connector: aiohttp.TCPConnector) -> None:
    """Make ``connector`` open its connections with :class:`UpstreamProtocol`."""
    # aiohttp has no public hook for the protocol class; the attribute is its own factory.
    connector._factory = functools.partial(UpstreamProtocol, loop=connector._loop)  # type: ignore[assignment]
