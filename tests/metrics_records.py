"""Feeding records to a metrics observer as the request hooks would, shared by the metrics tests."""

from __future__ import annotations

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_metrics.observer import MetricsObserver


def make_context(record: AccessRecord) -> RequestContext:
    return RequestContext(
        request_id=record.request_id,
        method=record.method,
        path=record.path,
        endpoint=record.endpoint,
        query=record.query,
        client_ip=record.client_ip,
        user_agent=record.user_agent,
        service_type=record.service_type,
        model=record.model,
        streaming=record.streaming,
        started_at=record.timestamp,
        started_monotonic=0.0,
    )


def serve_one(observer: MetricsObserver, record: AccessRecord) -> None:
    context = make_context(record)
    observer.on_request_start(context=context)
    observer.on_request_end(context=context, record=record)
