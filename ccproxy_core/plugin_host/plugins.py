"""Plugin discovery and enablement: every plugin is an entry point in group ``ccproxy``.

A plugin's name is its entry-point name. Each plugin says when it is on (its
``PluginSpec.enabled_when``; the built-ins follow their documented flags); any plugin can
be disabled by name (``PLUGINS__DISABLED``). Disabled names are blocked before their entry
point is imported, so a disabled plugin's import errors cannot hurt. A plugin that fails to
import or to validate (a misspelled hook, a wrapper where none may run, an ``async def``
implementation of a hook that is not awaited), or whose enabling rule raises or answers in
another shape, is recorded, not raised (unless ``PLUGINS__STRICT``), so ``ccproxy plugins
list`` can show it.

Two plugins of one name cannot both load: the built-in one is kept (else the first found),
and the other is listed as not loaded, with a warning. Nor can a plugin named like one of
ccproxy's own settings under ``PLUGINS__`` (``strict``, ``disabled``): its table would be that
setting.
"""

from __future__ import annotations

import difflib
import logging
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points

import pluggy

from ccproxy_core.errors import PluginLoadError
from ccproxy_core.plugin_host import hookspecs
from ccproxy_core.plugin_host.dispatch import CcproxyPluginManager
from ccproxy_core.plugin_host.hook_mistakes import hook_mistake
from ccproxy_core.plugin_host.plugin_settings import bind_plugin_settings
from ccproxy_core.plugin_host.plugin_spec import BUILT_IN_DISTRIBUTION, PluginSpec, specs_of
from ccproxy_core.runtime.settings import PluginSettings, Settings

log = logging.getLogger("ccproxy.plugins")

ENTRY_POINT_GROUP = "ccproxy"
RESERVED_NAMES = frozenset(PluginSettings.model_fields)
"""Names no plugin may have: ccproxy's own settings under ``PLUGINS__``, where a plugin's table would be."""


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
    """Whether the loaded plugin called ``name`` should stay loaded under ``settings``, and why.

    Raises what the plugin's ``enabled_when`` raises, and ``TypeError`` when its answer is not
    ``(enabled, reason)``, a ``bool`` and a ``str``.
    """
    if name in settings.plugins.disabled:
        return False, "disabled by name (PLUGINS__DISABLED)"
    if spec is None or spec.enabled_when is None:
        return True, "installed"
    answer = spec.enabled_when(settings)
    if not (
        isinstance(answer, tuple) and len(answer) == 2 and isinstance(answer[0], bool) and isinstance(answer[1], str)
    ):
        raise TypeError(f"it returned {reprlib.repr(answer)}, not (enabled, reason), a bool and a str")
    return answer


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
        if info.reason or pm.get_plugin(info.name) is None:  # not loaded: disabled, failed, a name taken
            continue
        try:
            info.enabled, info.reason = enablement(info.name, specs.get(info.name), settings)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's enabling rule fails that plugin, never ccproxy
            _failed(info, f"enabled_when failed: {failure_text(exc)}", settings, report=True)
        if info.enabled:
            info.hooks = hook_names(pm, pm.get_plugin(info.name))
        else:
            pm.unregister(name=info.name)
            pm.set_blocked(info.name)
    if settings.plugins.strict:
        _refuse_failures(infos)
    pm.ccproxy_plugins = infos
    pm.ccproxy_specs = specs
    return pm


def running_plugin_names(pm: object) -> list[str]:
    """The names of the plugins ``get_plugin_manager`` enabled, in load order (none for a manager built by hand)."""
    return [info.name for info in getattr(pm, "ccproxy_plugins", []) if info.enabled]


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
    installed, clashing = _unique(found)
    infos = [_load_entry_point(pm, ep, settings, report) for ep in installed]
    infos += [_left_out(ep, kept, report) for ep, kept in clashing]
    infos.sort(key=lambda info: info.name)
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


def _unique(found: Iterable[EntryPoint]) -> tuple[list[EntryPoint], list[tuple[EntryPoint, EntryPoint]]]:
    """One entry point per name, and ``(left out, kept)`` for each other plugin of a name taken.

    The same entry point can be visible twice (an editable install beside a copy): that is no clash.
    Names that differ only in case clash: the settings of both would be ``PLUGINS__<NAME>__...``.
    """
    kept: dict[str, EntryPoint] = {}
    clashing: list[tuple[EntryPoint, EntryPoint]] = []
    for ep in found:
        first = kept.setdefault(ep.name.lower(), ep)
        if first is ep or first.value == ep.value:
            continue
        if _is_built_in(ep) and not _is_built_in(first):
            kept[ep.name.lower()] = ep
            clashing.append((first, ep))
        else:
            clashing.append((ep, first))
    return sorted(kept.values(), key=lambda ep: ep.name), clashing


def _is_built_in(ep: EntryPoint) -> bool:
    return ep.dist is not None and ep.dist.name == BUILT_IN_DISTRIBUTION


def _info(ep: EntryPoint) -> PluginInfo:
    dist = ep.dist
    return PluginInfo(
        name=ep.name,
        version=dist.version if dist else None,
        distribution=dist.name if dist else None,
        enabled=False,
        reason="",
    )


def _left_out(ep: EntryPoint, kept: EntryPoint, report: bool) -> PluginInfo:
    """The listing of a plugin not loaded because another one, ``kept``, has its name."""
    info = _info(ep)
    owner = kept.dist.name if kept.dist else kept.value
    info.reason = f"not loaded: {owner} has a plugin of the same name, which is loaded"
    if report:
        log.warning(
            "two plugins are named %r: %s's (%s) is loaded, %s's (%s) is not; rename one entry point",
            ep.name,
            owner,
            kept.value,
            ep.dist.name if ep.dist else "another distribution",
            ep.value,
        )
    return info


def _load_entry_point(pm: pluggy.PluginManager, ep: EntryPoint, settings: Settings, report: bool) -> PluginInfo:
    info = _info(ep)
    if ep.name in RESERVED_NAMES:
        setting = f"PLUGINS__{ep.name.upper()}"
        info.reason = f"not loaded: its name is ccproxy's setting {setting}; rename its entry point"
        pm.set_blocked(ep.name)
        if report:
            log.warning("plugin %s is not loaded: its name is ccproxy's setting %s", ep.name, setting)
        return info
    if ep.name in settings.plugins.disabled:
        info.reason = "disabled by name (PLUGINS__DISABLED)"
        pm.set_blocked(ep.name)
        return info
    try:
        plugin = ep.load()
        if plugin is None or isinstance(plugin, int | float | str | bytes):
            raise TypeError(f"{ep.value} is {plugin!r}, not a module, class or object with ccproxy hooks")
        register_checked(pm, plugin, ep.name)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a third-party plugin's import fails that plugin, never ccproxy
        _failed(info, failure_text(exc), settings, report)
    return info


def failure_text(exc: BaseException) -> str:
    """What a plugin raised, in one line (``sys.exit()`` named as such: its message alone says nothing)."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return " ".join(f"{type(exc).__name__}: {exc}".split())


def _failed(info: PluginInfo, error: str, settings: Settings, report: bool) -> None:
    """Record that the plugin of ``info`` failed to load; with ``report``, log it (under strict mode
    :func:`_refuse_failures` raises them all at once instead)."""
    info.enabled, info.error, info.reason = False, error, f"failed to load: {error}"
    if report and not settings.plugins.strict:
        log.error("plugin %s failed to load: %s", info.name, error)


def _refuse_failures(infos: list[PluginInfo]) -> None:
    """Under strict mode, every plugin that failed to load, in one line (the caller prints it, once)."""
    failed = [info for info in infos if info.error is not None]
    if len(failed) == 1:
        raise PluginLoadError(
            f"plugin {failed[0].name} failed to load: {failed[0].error}; "
            "mend or uninstall it, or name it in PLUGINS__DISABLED"
        )
    if failed:
        each = "; ".join(f"plugin {info.name}: {info.error}" for info in failed)
        raise PluginLoadError(
            f"{len(failed)} plugins failed to load: {each}; mend or uninstall them, or name them in PLUGINS__DISABLED"
        )


def register_checked(pm: pluggy.PluginManager, plugin: object, name: str | None = None) -> str | None:
    """Register ``plugin``; undo and raise if a hook is unknown (``check_pending``), its spec is bad, or it
    implements no hook. A slip ccproxy can name (a misspelled hook or argument) is said with its fix."""
    try:
        registered = pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise _explained(pm, plugin, exc) from None
    try:
        pm.check_pending()
        specs_of(pm)
        if not pm.get_hookcallers(plugin):
            raise pluggy.PluginValidationError(plugin, "it implements no hook")
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        raise _explained(pm, plugin, exc) from None
    except Exception:
        pm.unregister(plugin)
        raise
    return registered


def _explained(pm: pluggy.PluginManager, plugin: object, error: pluggy.PluginValidationError) -> Exception:
    """``error``, or the same error saying what the plugin's author got wrong and how to mend it."""
    mistake = hook_mistake(pm, plugin, error)
    return error if mistake is None else pluggy.PluginValidationError(plugin, mistake)


def hook_names(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """The names of the hooks ``plugin`` implements, in contract order."""
    callers = pm.get_hookcallers(plugin) or []
    return sorted(caller.name for caller in callers)
