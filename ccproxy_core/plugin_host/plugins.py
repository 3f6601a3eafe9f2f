"""Plugin discovery and enablement: every plugin is an entry point in group ``ccproxy``.

A plugin's name is its entry-point name. Each plugin says when it is on (its
``PluginSpec.enabled_when``; the built-ins follow their documented flags); any plugin can
be disabled by name (``PLUGINS__DISABLED``). Disabled names are blocked before their entry
point is imported, so a disabled plugin's import errors cannot hurt. A plugin that fails to
import or to validate (a misspelled hook, a wrapper where none may run) is recorded, not
raised (unless ``PLUGINS__STRICT``), so ``ccproxy plugins list`` can show it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from ccproxy_core.errors import PluginLoadError
from ccproxy_core.plugin_host import hookspecs
from ccproxy_core.plugin_host.dispatch import CcproxyPluginManager
from ccproxy_core.plugin_host.plugin_settings import bind_plugin_settings
from ccproxy_core.plugin_host.plugin_spec import PluginSpec, specs_of
from ccproxy_core.runtime.settings import Settings

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


def enablement(name: str, spec: PluginSpec | None, settings: Settings) -> tuple[bool, str]:
    """Whether the loaded plugin called ``name`` should stay loaded under ``settings``, and why."""
    if name in settings.plugins.disabled:
        return False, "disabled by name (PLUGINS__DISABLED)"
    if spec is None or spec.enabled_when is None:
        return True, "installed"
    return spec.enabled_when(settings)


def get_plugin_manager(settings: Settings, entry_points_: Iterable[EntryPoint] | None = None) -> CcproxyPluginManager:
    """Build a plugin manager with every enabled plugin of group ``ccproxy`` loaded.

    Also binds the plugins' settings models into ``settings`` (raising
    :class:`ccproxy_core.errors.SettingsError` on an unknown key or a bad value). The result
    carries ``pm.ccproxy_plugins`` (a :class:`PluginInfo` per discovered plugin, enabled or
    not) and ``pm.ccproxy_specs`` (the ``PluginSpec`` of every loaded plugin, enabled or not).
    """
    pm, infos = load_plugins(settings, entry_points_, report=True)
    specs = specs_of(pm)
    bind_plugin_settings(settings, specs, unloaded=[info.name for info in infos if pm.get_plugin(info.name) is None])
    for info in infos:
        if pm.get_plugin(info.name) is None:
            continue
        info.enabled, info.reason = enablement(info.name, specs.get(info.name), settings)
        if info.enabled:
            info.hooks = hook_names(pm, pm.get_plugin(info.name))
        else:
            pm.unregister(name=info.name)
            pm.set_blocked(info.name)
    pm.ccproxy_plugins = infos
    pm.ccproxy_specs = specs
    return pm


def bind_installed_plugin_settings(settings: Settings, entry_points_: Iterable[EntryPoint] | None = None) -> Settings:
    """Give ``settings`` the settings models of the installed plugins (those not disabled by name)."""
    pm, infos = load_plugins(settings, entry_points_, report=False)
    bind_plugin_settings(
        settings, specs_of(pm), unloaded=[info.name for info in infos if pm.get_plugin(info.name) is None]
    )
    return settings


def load_plugins(
    settings: Settings, entry_points_: Iterable[EntryPoint] | None, report: bool
) -> tuple[CcproxyPluginManager, list[PluginInfo]]:
    """Import and register every plugin not disabled by name; enablement is decided later."""
    pm = CcproxyPluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    found = entry_points(group=ENTRY_POINT_GROUP) if entry_points_ is None else entry_points_
    installed = _unique(found)
    infos = [_load_entry_point(pm, ep, settings, report) for ep in installed]
    if report:
        _warn_unknown_disabled(settings.plugins.disabled, {ep.name for ep in installed})
    return pm, infos


def _warn_unknown_disabled(disabled: Iterable[str], installed: set[str]) -> None:
    """A name in PLUGINS__DISABLED that no installed plugin has is most likely a typo: say so."""
    for name in disabled:
        if name not in installed:
            close = difflib.get_close_matches(name, sorted(installed), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            log.warning("PLUGINS__DISABLED names %r, which no installed plugin is%s", name, hint)


def _unique(found: Iterable[EntryPoint]) -> list[EntryPoint]:
    # The same distribution can be visible twice (an editable install beside a copy); keep the first.
    seen: dict[str, EntryPoint] = {}
    for ep in found:
        seen.setdefault(ep.name, ep)
    return sorted(seen.values(), key=lambda ep: ep.name)


def _load_entry_point(pm: pluggy.PluginManager, ep: EntryPoint, settings: Settings, report: bool) -> PluginInfo:
    dist = ep.dist
    info = PluginInfo(
        name=ep.name,
        version=dist.version if dist else None,
        distribution=dist.name if dist else None,
        enabled=False,
        reason="",
    )
    if ep.name in settings.plugins.disabled:
        info.reason = "disabled by name (PLUGINS__DISABLED)"
        pm.set_blocked(ep.name)
        return info
    try:
        register_checked(pm, ep.load(), ep.name)
    except Exception as exc:  # any import error of a third-party plugin is reported, not raised
        info.error = f"{type(exc).__name__}: {exc}"
        info.reason = f"failed to load: {info.error}"
        if report:
            log.error("plugin %s failed to load: %s", ep.name, info.error)
            if settings.plugins.strict:
                raise PluginLoadError(f"plugin {ep.name} failed to load: {info.error}") from exc
    return info


def register_checked(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> str | None:
    """Register ``plugin``; undo and raise if a hook is unknown (``check_pending``) or its spec is bad."""
    registered = pm.register(plugin, name=name)
    try:
        pm.check_pending()
        specs_of(pm)
    except Exception:
        pm.unregister(plugin)
        raise
    return registered


def hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The names of the hooks ``plugin`` implements, in contract order."""
    callers = pm.get_hookcallers(plugin) or []
    return sorted(caller.name for caller in callers)
