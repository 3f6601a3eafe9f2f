"""An exchange begun: the context of a proxied request, read from its head and its body's fields."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Scope

from ccproxy_core.accounting.attribution import Attributor
from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.forwarding.exchange import Arrival, Exchange
from ccproxy_core.forwarding.request_parts import client_address, client_headers, url_path
from ccproxy_core.key_masking import SHORTEST_MASKED_KEY, query_secrets
from ccproxy_core.providers import ProxyRoute, provider_for, reader_for, service_type_for
from ccproxy_core.safe_values import ValueCaps, new_request_id, redact_query, safe_text


def start_exchange(
    scope: Scope,
    route: ProxyRoute,
    body: bytes | bytearray | None,
    fields: tuple[dict | None, str | None, bool],
    arrived: Arrival,
    caps: ValueCaps,
    attributor: Attributor,
    configured_keys: tuple[str, ...],
) -> Exchange:
    """The exchange of a request on ``route``: ``fields`` are the body's payload, model and stream flag;
    every value from the client is capped by ``caps`` and attributed by ``attributor``; the operator's
    ``configured_keys`` and those in the query string are masked wherever they are echoed."""
    payload, model, streaming = fields
    client_request_id, user_agent, traceparent, tracestate = client_headers(scope["headers"])
    # Only a path both providers serve needs the headers read to tell whose it is.
    service_type = route.service_type or service_type_for(route, Request(scope).headers)
    provider = provider_for(service_type)
    context = RequestContext(
        request_id=new_request_id(),
        method=safe_text(scope["method"], 32),
        path=safe_text(url_path(scope), caps.path),
        endpoint=route.template,
        query=redact_query(scope["query_string"], caps.query),
        client_ip=client_address(scope),
        user_agent=None if user_agent is None else safe_text(user_agent, caps.user_agent),
        service_type=provider.name,
        model=None if model is None else safe_text(model, caps.model),
        streaming=streaming,
        started_at=arrived.at,
        started_monotonic=arrived.clock,
        traceparent=traceparent,
        tracestate=tracestate,
        client_request_id=None if client_request_id is None else safe_text(client_request_id, caps.request_id),
    )
    attributor.fill(context, scope["headers"], payload)
    return Exchange(
        context=context,
        provider=provider,
        request_bytes=len(body or b""),
        client_request_id=context.client_request_id,
        reader=reader_for(route, provider.name),
        client_headers=scope["headers"],
        other_keys=configured_keys + query_secrets(scope["query_string"], SHORTEST_MASKED_KEY),
    )
