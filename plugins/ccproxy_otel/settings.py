"""The OpenTelemetry plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel


class OtelSettings(BaseModel):
    """Exporting each proxied request as an OpenTelemetry span; where to is set by the standard OTEL_* variables."""

    otel_enabled: bool = False
    """OBSERVABILITY__OTEL_ENABLED: export one OpenTelemetry span per proxied request (OTLP/HTTP, set by OTEL_* variables)."""
    otel_metrics_enabled: bool = False
    """OBSERVABILITY__OTEL_METRICS_ENABLED: with OpenTelemetry on, also export the GenAI client metrics."""
