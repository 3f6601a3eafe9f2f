"""The one change a provider may make to a request before it is forwarded (``Provider.prepare_body``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccproxy_core.forwarding.large_bodies import LARGE_BODY_BYTES

if TYPE_CHECKING:
    from ccproxy_core.providers import Provider
    from ccproxy_core.runtime.settings import UpstreamSettings


async def prepared_body(
    provider: Provider, endpoint: str, body: bytes | bytearray, upstream: UpstreamSettings
) -> bytes | bytearray:
    """The provider's one change to a request (``Provider.prepare_body``), when the operator opted in to it
    (``UPSTREAM__<PROVIDER>_STREAM_INCLUDE_USAGE``); a body over :data:`LARGE_BODY_BYTES` in a worker thread,
    as reading it takes the event loop some 70 ms a megabyte."""
    prepare = provider.prepare_body
    opted_in = getattr(upstream, f"{provider.name}_stream_include_usage", False)
    if prepare is None:
        return body
    if not opted_in or len(body) <= LARGE_BODY_BYTES:
        return prepare(endpoint, body, opted_in)
    return await asyncio.to_thread(prepare, endpoint, body, opted_in)
