"""The budgets plugin's settings, under ``[observability]``; the budgets themselves are ``[[budgets]]`` tables."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class BudgetsPluginSettings(BaseModel):
    """Whether budgets are enforced, and where their notices go."""

    budgets_enabled: bool = False
    """OBSERVABILITY__BUDGETS_ENABLED: enforce the ``[[budgets]]`` of the config file."""
    budgets_webhook_url: str | None = None
    """OBSERVABILITY__BUDGETS_WEBHOOK_URL: POST a notice here when a budget crosses 50, 80 and 100%."""
    budgets_webhook_format: Literal["json", "slack"] = "json"
    """OBSERVABILITY__BUDGETS_WEBHOOK_FORMAT: ``json`` (ccproxy's fields) or ``slack`` (``{"text": ...}``)."""
