"""The OpenTelemetry SDK objects of one app: a tracer provider with a batch processor, and optionally a meter.

Everything network-bound runs in the SDK's own threads: ending a span only queues it for
the BatchSpanProcessor, whose worker exports in batches; metrics are read and exported by a
periodic reader thread. Nothing is set as the process-global provider, so embedding ccproxy
in a program that has its own OpenTelemetry set-up changes nothing for that program.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

from ccproxy_otel.bounded_session import exporter_session
from ccproxy_otel.genai_metrics import GenAIMetrics
from ccproxy_otel.header_settings import check_header_variables

log = logging.getLogger("ccproxy.otel")
INSTRUMENTATION_NAME = "ccproxy"


@dataclass
class Pipeline:
    """The tracer spans are made with, the GenAI metrics (or ``None``), and the providers to shut down."""

    tracer: Tracer
    metrics: GenAIMetrics | None
    tracer_provider: TracerProvider
    meter_provider: MeterProvider | None

    def shutdown(self) -> None:
        """Export what is still batched, then stop the SDK's threads. Blocking: call it from a thread."""
        self.tracer_provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()


def build_pipeline(with_metrics: bool) -> Pipeline:
    """Providers configured by the standard OTEL_* environment variables, which the SDK reads itself.

    OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / _METRICS_ENDPOINT),
    OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
    OTEL_TRACES_SAMPLER, OTEL_BSP_* and OTEL_METRIC_EXPORT_INTERVAL all apply.
    """
    check_header_variables()
    resource = _resource()
    # No exit handler of the SDK's: ccproxy shuts the providers down itself, within its shutdown time
    # (an exit handler would wait for an absent collector, batch after batch, past any grace period).
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(session=exporter_session())))
    tracer = tracer_provider.get_tracer(INSTRUMENTATION_NAME, _ccproxy_version())
    meter_provider = metrics = None
    if with_metrics:
        reader = PeriodicExportingMetricReader(OTLPMetricExporter(session=exporter_session()))
        meter_provider = MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)
        metrics = GenAIMetrics(meter_provider.get_meter(INSTRUMENTATION_NAME, _ccproxy_version()))
    log.info(
        "OpenTelemetry export on: service.name=%s, metrics %s",
        resource.attributes.get(SERVICE_NAME),
        "on" if with_metrics else "off",
    )
    return Pipeline(tracer, metrics, tracer_provider, meter_provider)


def _resource() -> Resource:
    # Resource.create() reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; only when neither
    # names the service is it called ccproxy (the SDK's fallback would be "unknown_service").
    resource = Resource.create({SERVICE_VERSION: _ccproxy_version()})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "ccproxy"}))
    return resource


def _ccproxy_version() -> str:
    try:
        return version("ccproxy-observability")
    except PackageNotFoundError:
        return "unknown"
