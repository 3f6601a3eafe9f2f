"""Turns each proxied request into one span (and metric points), on the hot path but without blocking.

One :class:`SpanObserver` per app is registered with the app's plugin manager while the
server runs, so the request hooks (which get no ``app``) reach that app's tracer.
"""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ccproxy_core import hookimpl
from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.forwarding.route_table import UNMATCHED
from ccproxy_core.runtime.settings import UpstreamSettings
from ccproxy_otel.attributes import error_type, provider_servers, span_attributes, span_name, unix_nanos
from ccproxy_otel.pipeline import Pipeline

OBSERVER_NAME = "otel.observer"
_PARENT = "ccproxy_otel.parent"
_PROPAGATOR = TraceContextTextMapPropagator()


class SpanObserver:
    """The per-app plugin object whose request hooks make that app's spans."""

    def __init__(self, pipeline: Pipeline, upstream: UpstreamSettings) -> None:
        self.pipeline = pipeline
        self.servers = provider_servers(upstream)

    @hookimpl
    def on_request_start(self, context: RequestContext) -> None:
        """Keep the client's trace context, if it sent a valid one, as the parent of the span."""
        if context.traceparent:
            carrier = {"traceparent": context.traceparent}
            if context.tracestate:
                carrier["tracestate"] = context.tracestate
            context.state[_PARENT] = _PROPAGATOR.extract(carrier)

    @hookimpl
    def on_request_end(self, context: RequestContext, record: AccessRecord) -> None:
        """Make the request's span, timed by the record, and hand it to the batch processor."""
        parent: Context | None = context.state.pop(_PARENT, None)
        # A path outside the provider APIs is answered here: no provider's server was called.
        server = None if record.endpoint == UNMATCHED else self.servers.get(record.service_type)
        start = unix_nanos(record.timestamp)
        span = self.pipeline.tracer.start_span(
            span_name(record),
            context=parent,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes=span_attributes(record, server),
        )
        failure = error_type(record)
        if failure is not None:
            span.set_status(Status(StatusCode.ERROR, failure))
        span.end(end_time=start + round(record.duration_seconds * 1_000_000_000))
        if self.pipeline.metrics is not None:
            self.pipeline.metrics.record(record, server)
