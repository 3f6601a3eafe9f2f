"""The provider's answer to a WebSocket upgrade that it did not accept, kept whole for the client.

aiohttp's ``ws_connect`` follows redirects (the upgrade's headers, a key among them, going wherever
``Location`` points) and drops the body of any other answer, keeping only its status. Upgrades are
sent from a session of their own, on the provider's connection pool, whose trace hook sees each
answer before that: the first that is not ``101 Switching Protocols`` is read and raised as
:class:`UpgradeRefused`, so it is never followed and the client gets it as the provider sent it.
"""

from __future__ import annotations

from types import SimpleNamespace

import aiohttp

from ccproxy_core.forwarding.decoding import DecodingFailed, decoder_for, joined_codings

MAX_REFUSAL_BYTES = 1024 * 1024
"""A refusal's body is read up to this size; a larger one is not the provider's usual error object."""


class UpgradeRefused(Exception):
    """The provider answered the upgrade with ``status`` (a redirect, an error), not with the upgrade."""

    def __init__(
        self, status: int, headers: tuple[tuple[bytes, bytes], ...], body: bytes | None, cut: str | None = None
    ) -> None:
        super().__init__(f"the provider answered the WebSocket upgrade with status {status}")
        self.status, self.headers, self.body = status, headers, body
        """``body`` is ``None`` when it was larger than :data:`MAX_REFUSAL_BYTES`, or cut short."""
        self.cut = cut
        """Why the body ended before its end (the connection closed, a chunk broken), if it did."""

    def readable_body(self) -> bytes:
        """The body decoded for reading its error (the client gets it as it came)."""
        lines = (value.decode("latin-1") for name, value in self.headers if name.lower() == b"content-encoding")
        try:
            decoder = decoder_for(joined_codings(lines), MAX_REFUSAL_BYTES * 64)
            body = self.body or b""
            return decoder.decode(body) if decoder else body
        except DecodingFailed:
            return b""


def upgrade_session(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """A session for upgrades on ``session``'s connection pool (which stays ``session``'s to close)."""
    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(_refuse)
    trace.on_request_end.append(_refuse)
    return aiohttp.ClientSession(
        connector=session.connector,
        connector_owner=False,
        timeout=session.timeout,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        trace_configs=[trace],
        # Only the client's own headers: asked for compression it did not offer, a provider would compress
        # a refusal the client cannot read. The upgrade's own headers aiohttp still adds.
        skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept"),
    )


async def _refuse(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    response: aiohttp.ClientResponse = params.response  # type: ignore[attr-defined]
    if response.status == 101:
        return
    cut = None
    try:
        body = await _body(response)
    except aiohttp.ClientPayloadError as exc:  # the status and headers came: the provider answered
        body, cut = None, str(exc)
    finally:
        response.close()
    raise UpgradeRefused(response.status, tuple(response.raw_headers), body, cut)


async def _body(response: aiohttp.ClientResponse) -> bytes | None:
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > MAX_REFUSAL_BYTES:
            return None
    return bytes(body)
