"""Built-in ccproxy plugin: dashboard. A live page on /dashboard over the logs API.

On when ``OBSERVABILITY__DASHBOARD_ENABLED=true``. Its data comes from the ``logs_api``
plugin (/logs/analytics, /logs/stream); the page says which setting to turn on when
that plugin or log collection is off.
"""

from __future__ import annotations

from fastapi import FastAPI

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.plugin_spec import PluginSpec, flag
from ccproxy_core.runtime.settings import Settings
from ccproxy_dashboard import routes, startup
from ccproxy_dashboard.settings import DashboardSettings

SWITCH = "OBSERVABILITY__DASHBOARD_ENABLED"


@hookimpl
def register_plugin() -> PluginSpec:
    """Settings under [observability]; on with its flag."""
    return PluginSpec(
        settings=DashboardSettings,
        section="observability",
        enabled_when=flag(SWITCH),
        own_paths=("/dashboard",),
        switch=SWITCH,
    )


@hookimpl
def register_routes(app: FastAPI, settings: Settings) -> None:
    """Serve GET /dashboard and its bundled assets under /dashboard/static/."""
    routes.register(app)


@hookimpl
def on_startup(app: FastAPI, settings: Settings) -> None:
    """Warn once, at start, if the front-end bundle was not built or its data source is off."""
    startup.warn_about_gaps(settings)
