"""The metrics plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode


class MetricsSettings(BaseModel):
    """Prometheus metrics of proxied requests."""

    metrics_endpoint_enabled: bool = False
    """OBSERVABILITY__METRICS_ENDPOINT_ENABLED: serve Prometheus metrics on /metrics."""
    metrics_model_label_cap: int = Field(100, ge=1)
    """OBSERVABILITY__METRICS_MODEL_LABEL_CAP: distinct model labels before others become ``other``."""
    metrics_attribution_labels: Annotated[list[Literal["project", "client"]], NoDecode] = []
    """OBSERVABILITY__METRICS_ATTRIBUTION_LABELS: ``project`` and/or ``client`` (comma separated) add
    those labels to the request, token and cost counters, each capped like the model label, and
    their distinct combinations too. Sessions and users are never labels: they are unbounded."""

    @field_validator("metrics_attribution_labels", mode="before")
    @classmethod
    def _label_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value
