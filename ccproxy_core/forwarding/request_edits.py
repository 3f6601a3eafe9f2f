"""The one change a provider may make to a request before it is forwarded (``Provider.prepare_body``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccproxy_core.forwarding.decoding import decode_whole, is_encoded
from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES

if TYPE_CHECKING:
    from multidict import CIMultiDict

    from ccproxy_core.providers import Provider
    from ccproxy_core.runtime.settings import UpstreamSettings


async def prepared_body(
    provider: Provider,
    endpoint: str,
    body: bytes | bytearray,
    upstream: UpstreamSettings,
    headers: CIMultiDict[str] | None = None,
    decoded_limit: int = 0,
) -> bytes | bytearray:
    """The provider's one change to a request (``Provider.prepare_body``), when the operator opted in to it
    (``UPSTREAM__<PROVIDER>_STREAM_INCLUDE_USAGE``); a body over :data:`LARGE_BODY_BYTES` in a worker thread,
    as reading it takes the event loop some 70 ms a megabyte.

    A compressed body (the ``Content-Encoding`` of the forwarded ``headers``) is edited decoded, up to
    ``decoded_limit`` bytes and :data:`LARGE_BODY_BYTES`, and then sent decoded, that header taken out. One
    that needs no change, that decodes larger, or that is not exactly one stream of its encoding (the
    provider may refuse what ccproxy would repair) is sent as it came.
    """
    prepare = provider.prepare_body
    if prepare is None or not getattr(upstream, f"{provider.name}_stream_include_usage", False):
        return body
    encoding = headers.get("content-encoding") if headers is not None else None
    if headers is not None and encoding is not None and is_encoded(encoding):
        limit = min(decoded_limit, LARGE_BODY_BYTES)  # the decoded copy and the edited one live as long as the send
        decoded = await asyncio.to_thread(decode_whole, body, encoding, limit, True)
        if decoded is None:
            return body
        edited = await asyncio.to_thread(prepare, endpoint, decoded, True)
        if edited == decoded:
            return body
        del headers["content-encoding"]
        return edited
    if len(body) <= LARGE_BODY_BYTES:
        return prepare(endpoint, body, True)
    return await asyncio.to_thread(prepare, endpoint, body, True)
