"""Plugin discovery and enablement: every plugin is an entry point in group ``ccproxy``.

A plugin's name is its entry-point name. Built-in plugins are switched on by their
documented flags; any plugin can be disabled by name (``PLUGINS__DISABLED``). Disabled
names are blocked before their entry point is imported, so a disabled plugin's import
errors cannot hurt. A plugin that fails to import is recorded, not raised (unless
``PLUGINS__STRICT``), so ``ccproxy plugins list`` can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from ccproxy_core import hookspecs
from ccproxy_core.errors import PluginLoadError
from ccproxy_core.settings import Settings

log = logging.getLogger("ccproxy.plugins")

ENTRY_POINT_GROUP = "ccproxy"


@dataclass
class PluginInfo:
    """What ``ccproxy plugins list`` shows about one discovered plugin."""

    name: str
    version: str | None
    distribution: str | None
    enabled: bool
    reason: str
    hooks: list[str] = field(default_factory=list)
    error: str | None = None


def _flag(name: str, on: bool) -> tuple[bool, str]:
    return on, f"{name}={'true' if on else 'false'}"


def _metrics_enabled(s: Settings) -> tuple[bool, str]:
    if s.observability.metrics_endpoint_enabled:
        return True, "OBSERVABILITY__METRICS_ENDPOINT_ENABLED=true"
    if s.observability.pushgateway_url:
        return True, "needed by OBSERVABILITY__PUSHGATEWAY_URL"
    return False, "OBSERVABILITY__METRICS_ENDPOINT_ENABLED=false"


def _duckdb_enabled(s: Settings) -> tuple[bool, str]:
    obs = s.observability
    if not obs.logs_collection_enabled:
        return False, "OBSERVABILITY__LOGS_COLLECTION_ENABLED=false"
    if obs.log_storage_backend != "duckdb":
        return False, f"OBSERVABILITY__LOG_STORAGE_BACKEND={obs.log_storage_backend}"
    return True, "OBSERVABILITY__LOGS_COLLECTION_ENABLED=true"


def _pushgateway_enabled(s: Settings) -> tuple[bool, str]:
    if s.observability.pushgateway_url:
        return True, "OBSERVABILITY__PUSHGATEWAY_URL is set"
    return False, "OBSERVABILITY__PUSHGATEWAY_URL is not set"


BUILTIN_ENABLEMENT: dict[str, Callable[[Settings], tuple[bool, str]]] = {
    "metrics": _metrics_enabled,
    "pushgateway": _pushgateway_enabled,
    "duckdb": _duckdb_enabled,
    "logs_api": lambda s: _flag("OBSERVABILITY__LOGS_ENDPOINTS_ENABLED", s.observability.logs_endpoints_enabled),
    "dashboard": lambda s: _flag("OBSERVABILITY__DASHBOARD_ENABLED", s.observability.dashboard_enabled),
    "otel": lambda s: _flag("OBSERVABILITY__OTEL_ENABLED", s.observability.otel_enabled),
    "budgets": lambda s: _flag("OBSERVABILITY__BUDGETS_ENABLED", s.observability.budgets_enabled),
}


def enablement(name: str, settings: Settings) -> tuple[bool, str]:
    """Whether the plugin called ``name`` should load under ``settings``, and why."""
    if name in settings.plugins.disabled:
        return False, "disabled by name (PLUGINS__DISABLED)"
    rule = BUILTIN_ENABLEMENT.get(name)
    if rule is None:
        return True, "installed"
    return rule(settings)


def get_plugin_manager(settings: Settings, entry_points_: Iterable[EntryPoint] | None = None) -> pluggy.PluginManager:
    """Build a plugin manager with every enabled plugin of group ``ccproxy`` loaded.

    The result carries ``pm.ccproxy_plugins``: a list of :class:`PluginInfo`, one per
    discovered plugin, enabled or not.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    found = entry_points(group=ENTRY_POINT_GROUP) if entry_points_ is None else entry_points_
    infos = [_load_entry_point(pm, ep, settings) for ep in _unique(found)]
    pm.ccproxy_plugins = infos  # type: ignore[attr-defined]
    return pm


def _unique(found: Iterable[EntryPoint]) -> list[EntryPoint]:
    # The same distribution can be visible twice (an editable install beside a copy); keep the first.
    seen: dict[str, EntryPoint] = {}
    for ep in found:
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda ep: ep.name)


def _load_entry_point(pm: pluggy.PluginManager, ep: EntryPoint, settings: Settings) -> PluginInfo:
    dist = ep.dist
    info = PluginInfo(
        name=ep.name,
        version=dist.version if dist else None,
        distribution=dist.name if dist else None,
        enabled=False,
        reason="",
    )
    info.enabled, info.reason = enablement(ep.name, settings)
    if not info.enabled:
        pm.set_blocked(ep.name)
        return info
    try:
        plugin = ep.load()
        _reject_unknown_hooks(plugin)
        pm.register(plugin, name=ep.name)
    except Exception as exc:  # noqa: BLE001 - any import error of a third-party plugin is reported, not raised
        info.enabled, info.error = False, f"{type(exc).__name__}: {exc}"
        info.reason = f"failed to load: {info.error}"
        log.error("plugin %s failed to load: %s", ep.name, info.error)
        if settings.plugins.strict:
            raise PluginLoadError(f"plugin {ep.name} failed to load: {info.error}") from exc
        return info
    info.hooks = hook_names(pm, plugin)
    return info


def _reject_unknown_hooks(plugin: object) -> None:
    """A misspelled hookimpl would silently never run: refuse the plugin instead."""
    known = {hook_name for hook_name in dir(hookspecs) if not hook_name.startswith("_")}
    for impl_name in dir(plugin):
        attr = getattr(plugin, impl_name, None)
        if callable(attr) and hasattr(attr, "ccproxy_impl") and impl_name not in known:
            raise PluginLoadError(f"{impl_name} is not a ccproxy hook (misspelled?)")


def hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The names of the hooks ``plugin`` implements, in contract order."""
    callers = pm.get_hookcallers(plugin) or []
    return sorted(caller.name for caller in callers)
