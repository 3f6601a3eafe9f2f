"""The metrics plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MetricsSettings(BaseModel):
    """Prometheus metrics of proxied requests."""

    metrics_endpoint_enabled: bool = False
    """OBSERVABILITY__METRICS_ENDPOINT_ENABLED: serve Prometheus metrics on /metrics."""
    metrics_model_label_cap: int = Field(100, ge=1)
    """OBSERVABILITY__METRICS_MODEL_LABEL_CAP: distinct model labels before others become ``other``."""
