"""A plugin author's slips in hooks, named with their fix: a misspelled hook or argument, a hook left unmarked.

Read as pluggy reads a plugin (``inspect.getattr_static``): no property or other code of the plugin runs.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types

import pluggy

MARK = "mark it with @hookimpl (from ccproxy_core import hookimpl)"
"""The fix for a hook function left unmarked."""
_UNKNOWN_ARGUMENTS = re.compile(r"hook '(\w+)'\s+hookimpl definition:.*?Argument\(s\) \{(.*?)\} are declared", re.S)
_HOOKABLE = (types.FunctionType, types.MethodType, staticmethod, classmethod)


def hook_mistake(pm: pluggy.PluginManager, plugin: object, error: Exception | None = None) -> str | None:
    """The first slip in ``plugin``'s hooks that ccproxy can name with its fix; ``None`` when it sees none.

    ``error`` is what pluggy raised registering it, if anything.
    """
    offered = _offered_arguments(pm)
    if error is not None and (unknown := _UNKNOWN_ARGUMENTS.search(str(error))):
        hook, names = unknown.group(1), unknown.group(2).replace("'", "")
        if hook in offered:
            return f"its {hook} asks for {names}, which the hook does not give: name arguments from {', '.join(offered[hook])}"
    marked, unmarked = 0, []
    for attribute in sorted(dir(plugin)):
        value = inspect.getattr_static(plugin, attribute, None)
        options = pm.parse_hookimpl_opts(plugin, attribute)
        if options is None:
            if inspect.getattr_static(value, f"{pm.project_name}_impl", None) is not None:
                return (
                    f"{attribute} is marked as a hook but is a {type(value).__name__}, which is never called as one: "
                    "make it a plain function or method"
                )
            if attribute in offered and isinstance(value, _HOOKABLE):
                unmarked.append(attribute)
            continue
        marked += 1
        hook = options.get("specname") or attribute
        if hook not in offered and not options.get("optionalhook"):
            named = f"unknown hook {hook!r}" + ("" if hook == attribute else f" (the specname of {attribute})")
            near = difflib.get_close_matches(hook, offered, n=1)
            return named + (f": did you mean {near[0]}?" if near else f" (its hooks: {', '.join(sorted(offered))})")
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
