"""The budgets plugin's settings, under ``[observability]``; the budgets themselves are ``[[budgets]]`` tables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class BudgetsPluginSettings(BaseModel):
    """Whether budgets are enforced, and where their notices go."""

    budgets_enabled: bool = False
    """OBSERVABILITY__BUDGETS_ENABLED: enforce the ``[[budgets]]`` of the config file."""
    budgets_webhook_url: SecretStr | None = None
    """OBSERVABILITY__BUDGETS_WEBHOOK_URL: POST a notice here when a budget crosses 50, 80 and 100%. A secret:
    a Slack webhook's path is its credential, so the URL is never shown (``ccproxy config show`` masks it)."""
    budgets_webhook_format: Literal["json", "slack"] = "json"
    """OBSERVABILITY__BUDGETS_WEBHOOK_FORMAT: ``json`` (ccproxy's fields) or ``slack`` (``{"text": ...}``)."""
    budgets_sync_seconds: float = Field(10.0, ge=0)
    """OBSERVABILITY__BUDGETS_SYNC_SECONDS: with a log store shared by several instances (ClickHouse), how often
    each budget's spend is read from it, so the instances stop together; 0 reads it only at start-up."""
