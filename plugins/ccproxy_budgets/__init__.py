"""Built-in ccproxy plugin: spending budgets that warn or block, with webhook notices and metrics.

Loaded when OBSERVABILITY__BUDGETS_ENABLED is true; the budgets are the ``[[budgets]]`` tables
of the config file. See docs/budgets.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_budgets.lifecycle import start_budgets, stop_budgets
from ccproxy_budgets.settings import BudgetsPluginSettings
from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.runtime.settings import Settings


def _enabled(settings: Settings) -> tuple[bool, str]:
    on = bool(getattr(settings.observability, "budgets_enabled", False))
    return on, f"OBSERVABILITY__BUDGETS_ENABLED={'true' if on else 'false'}"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on with OBSERVABILITY__BUDGETS_ENABLED=true; starts after the log stores,
    whose records give each budget its spend so far."""
    return PluginSpec(
        settings=BudgetsPluginSettings,
        section="observability",
        enabled_when=_enabled,
        starts_after=("duckdb", "clickhouse"),
    )


@hookimpl(trylast=True)
async def on_startup(app: FastAPI, settings: Settings) -> None:
    """Read what each budget has spent this period from the log store, then start enforcing."""
    await start_budgets(app, settings)


@hookimpl
async def on_shutdown(app: FastAPI) -> None:
    """Stop enforcing and send the notices still queued; the budgets' figures stay in the metrics registry for a
    last scrape or push."""
    await stop_budgets(app)
