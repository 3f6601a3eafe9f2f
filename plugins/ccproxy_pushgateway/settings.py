"""The pushgateway plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PushgatewaySettings(BaseModel):
    """Pushing the metrics registry to a Prometheus Pushgateway."""

    pushgateway_url: str | None = None
    """OBSERVABILITY__PUSHGATEWAY_URL: push metrics there when set (user:pass@ allowed)."""
    pushgateway_interval_seconds: float = Field(15.0, gt=0)
    """OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS: seconds between pushes."""
    pushgateway_job: str = Field("ccproxy", min_length=1)
    """OBSERVABILITY__PUSHGATEWAY_JOB: the Pushgateway job name (the Pushgateway refuses an empty one)."""
    pushgateway_instance: str | None = None
    """OBSERVABILITY__PUSHGATEWAY_INSTANCE: grouping key ``instance``; default host:port."""
