"""The dashboard plugin's settings, under ``[observability]`` (``OBSERVABILITY__*``)."""

from __future__ import annotations

from pydantic import BaseModel


class DashboardSettings(BaseModel):
    """The live page on /dashboard."""

    dashboard_enabled: bool = False
    """OBSERVABILITY__DASHBOARD_ENABLED: serve the live dashboard on /dashboard."""
