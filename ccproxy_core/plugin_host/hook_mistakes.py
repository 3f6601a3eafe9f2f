"""A plugin author's slips in hooks, named with their fix: a misspelled hook or argument, a hook left unmarked."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

import pluggy

MARK = "mark it with @hookimpl (from ccproxy_core import hookimpl)"
"""The fix for a hook function left unmarked."""


def hook_mistake(pm: pluggy.PluginManager, plugin: object) -> str | None:
    """The first slip in ``plugin``'s hooks that ccproxy can name with its fix; ``None`` when it sees none."""
    offered = _offered_arguments(pm)
    marked, unmarked = 0, []
    for attribute in sorted(dir(plugin)):
        try:
            options = pm.parse_hookimpl_opts(plugin, attribute)
            function = getattr(plugin, attribute)
        except Exception:  # noqa: BLE001 - an attribute that raises on reading is no hook
            continue
        if options is None:
            if attribute in offered and callable(function):
                unmarked.append(attribute)
            continue
        marked += 1
        hook = options.get("specname") or attribute
        if hook not in offered:
            if options.get("optionalhook"):
                continue
            near = difflib.get_close_matches(hook, offered, n=1)
            named = f"unknown hook {hook!r}" + ("" if hook == attribute else f" (the specname of {attribute})")
            return named + (
                f": did you mean {near[0]}?" if near else f" (its hooks: {', '.join(sorted(offered))})"
            )
        if unknown := [name for name in _required_arguments(function) if name not in offered[hook]]:
            return (
                f"its {hook} asks for {', '.join(unknown)}, which the hook does not give: "
                f"name arguments from {', '.join(offered[hook])}"
            )
    if marked:
        return None
    if unmarked:
        return f"{', '.join(unmarked)} is not marked as a hook, so ccproxy would never call it: {MARK}"
    return "it implements no hook: mark each hook function with @hookimpl (from ccproxy_core import hookimpl)"


def _offered_arguments(pm: pluggy.PluginManager) -> dict[str, tuple[str, ...]]:
    """Every hook ccproxy has, with the arguments it gives."""
    offered = {}
    for name, caller in vars(pm.hook).items():
        spec = getattr(caller, "spec", None)
        if spec is not None:
            offered[name] = tuple(spec.argnames) + tuple(spec.kwargnames)
    return offered


def _required_arguments(function: Any) -> list[str]:
    """The arguments pluggy would pass ``function``: those without a default (``self`` left out)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        parameter.name
        for parameter in parameters
        if parameter.default is inspect.Parameter.empty
        and parameter.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        and parameter.name != "self"
    ]
