"""The handle on one running ccproxy app that every hook may take as ``ccproxy``.

A process may serve several apps (tests build many), so a plugin never keeps per-app
state in module globals: its module-level hook functions take ``ccproxy`` and find
their state in ``ccproxy.state("<plugin name>")``.

Shared services stay hooks (``get_log_store``, ``get_metrics_registry``), so a
third-party plugin can replace the built-in one with ``tryfirst=True``; the two typed
methods here ask those hooks for you.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    import pluggy
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry

    from ccproxy_core.plugin_host.log_store import LogStore
    from ccproxy_core.runtime.settings import Settings

M = TypeVar("M", bound=BaseModel)


class Ccproxy:
    """One running app, as its plugins see it."""

    __slots__ = ("app", "settings", "plugin_manager", "hook_errors", "started", "stop_by", "_states")

    def __init__(self, app: FastAPI, settings: Settings, plugin_manager: pluggy.PluginManager) -> None:
        self.app = app
        self.settings = settings
        self.plugin_manager = plugin_manager
        errors = getattr(plugin_manager, "hook_errors", None)  # a plain pluggy manager has none
        self.hook_errors: Counter[tuple[str, str]] = errors if isinstance(errors, Counter) else Counter()
        """Exceptions raised in request hooks, by ``(plugin, hook)``."""
        self.started = asyncio.Event()
        """Set once every plugin's ``on_startup`` has returned: from then on the server serves. Never set
        when a plugin fails to start (those started before it are stopped, and nothing is served)."""
        self.stop_by: float | None = None
        """While the plugins stop: the ``time.monotonic()`` by which the ``on_shutdown`` running now must have
        returned (its share of the plugins' shutdown time). Past it the plugin is left behind, and the plugins
        after it (the Pushgateway's last push) no longer see what it does."""
        self._states: dict[str, SimpleNamespace] = {}

    def seconds_to_stop(self) -> float | None:
        """Seconds left to the ``on_shutdown`` running now (see :attr:`stop_by`); ``None`` outside the shutdown."""
        return None if self.stop_by is None else max(0.0, self.stop_by - time.monotonic())

    def state(self, name: str) -> SimpleNamespace:
        """The per-app namespace of the plugin called ``name``, created empty on first use."""
        namespace = self._states.get(name)
        if namespace is None:
            namespace = self._states[name] = SimpleNamespace()
        return namespace

    def settings_of(self, model: type[M]) -> M:
        """This app's values of a plugin's settings model (the one its ``PluginSpec`` names).

        Raises ``LookupError`` when no loaded plugin declared ``model``.
        """
        from ccproxy_core.plugin_host.plugin_settings import section_values

        return section_values(self.settings, model)

    def log_store(self) -> LogStore | None:
        """The active access-log store (``get_log_store``), or ``None`` when records are not stored."""
        return self.plugin_manager.hook.get_log_store(app=self.app, settings=self.settings, ccproxy=self)

    def requests_in_flight(self) -> int:
        """Proxied requests begun and not yet recorded (in every worker, with ``--workers``). While the server
        drains (``app.state.draining``), their records are still to come."""
        count = getattr(self.app.state, "requests_in_flight", None)
        return count() if callable(count) else 0

    def metrics_registry(self) -> CollectorRegistry | None:
        """The ``CollectorRegistry`` of this app (``get_metrics_registry``), or ``None`` when metrics are off."""
        return self.plugin_manager.hook.get_metrics_registry(app=self.app, ccproxy=self)

    def __repr__(self) -> str:
        return f"<Ccproxy app={self.app.title!r} plugins={len(self.plugin_manager.get_plugins())}>"


def host_of(app: Any) -> Ccproxy:
    """The handle of ``app`` (for route handlers: ``host_of(request.app)``)."""
    return app.state.ccproxy
