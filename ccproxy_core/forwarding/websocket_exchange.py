"""The exchange (and so the record) of one answer on a forwarded WebSocket."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from multidict import CIMultiDict
from starlette.types import Scope

from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.forwarding.exchange import Exchange
from ccproxy_core.forwarding.request_parts import client_address, client_headers
from ccproxy_core.key_masking import SHORTEST_MASKED_KEY, query_secrets
from ccproxy_core.providers import OPENAI, provider_for
from ccproxy_core.providers.base import StreamState
from ccproxy_core.safe_values import new_request_id, redact_query, safe_text

if TYPE_CHECKING:
    from ccproxy_core.forwarding.proxy import Proxy

METHOD = "WEBSOCKET"
"""The records' method for answers on a socket."""


def answer_exchange(
    proxy: Proxy,
    scope: Scope,
    path: str,
    sent_headers: CIMultiDict[str] | None,
    model: str | None,
    request_bytes: int,
    request: dict[str, Any],
) -> Exchange:
    """A new answer on the socket of ``scope`` (the upgrade's), asked for by ``request`` (its ``response.create``)."""
    caps = proxy.caps
    client_request_id, user_agent, traceparent, tracestate = client_headers(scope["headers"])
    context = RequestContext(
        request_id=new_request_id(),
        method=METHOD,
        path=safe_text(scope["path"], caps.path),
        endpoint=path,
        query=redact_query(scope.get("query_string", b""), caps.query),
        client_ip=client_address(scope),
        user_agent=None if user_agent is None else safe_text(user_agent, caps.user_agent),
        service_type=OPENAI,
        model=None if model is None else safe_text(model, caps.model),
        streaming=True,
        started_at=datetime.now(UTC),
        started_monotonic=time.perf_counter(),
        traceparent=traceparent,
        tracestate=tracestate,
        client_request_id=None if client_request_id is None else safe_text(client_request_id, caps.request_id),
    )
    # Who and what it is for: the upgrade's headers (Codex CLI's session-id, User-Agent, key), and
    # this answer's request, as an HTTP body would carry it (safety_identifier, user, metadata).
    proxy.attributor.fill(context, scope["headers"], request)
    exchange = Exchange(
        context=context,
        provider=provider_for(OPENAI),
        request_bytes=request_bytes,
        client_status=200,
        upstream_status=101,
        reader="responses",
        stream_state=StreamState(),
        sent_headers=sent_headers,
        client_request_id=context.client_request_id,
        other_keys=proxy.configured_keys + query_secrets(scope.get("query_string", b""), SHORTEST_MASKED_KEY),
    )
    # Its message was read, and is sent on, at once: ccproxy's part before the provider's is nothing.
    exchange.body_read_at = exchange.upstream_sent_at = context.started_monotonic
    return exchange
