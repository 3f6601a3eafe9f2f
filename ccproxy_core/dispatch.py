"""Calling plugin hooks under the two error policies of the contract.

Build-time and lifecycle hooks fail fast (start-up stops with the plugin's name).
Request hooks are isolated: pluggy stops at the first implementation that raises,
so each implementation is called on its own; a raise is logged with the plugin and
hook name, counted, and the request goes on.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Awaitable
from typing import Any, TypeVar

import pluggy

from ccproxy_core.errors import StartupError

log = logging.getLogger("ccproxy.plugins")

T = TypeVar("T")

REQUEST_HOOKS = ("on_request_start", "admit_request", "on_request_end")


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Let a hook implementation be ``def`` or ``async def``."""
    if inspect.isawaitable(value):
        return await value
    return value


class RequestHooks:
    """Calls ``on_request_start`` / ``on_request_end`` implementations one by one, isolated.

    The list of implementations is read once (``refresh``), not on every request:
    call ``refresh`` after plugins register per-app observers in ``on_startup``.
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self._pm = pm
        self.errors: Counter[tuple[str, str]] = Counter()
        self._impls: dict[str, list[tuple[str, Any, tuple[str, ...]]]] = {}
        self.refresh()

    def refresh(self) -> None:
        """Re-read which plugins implement the request hooks."""
        for hook_name in REQUEST_HOOKS:
            caller = getattr(self._pm.hook, hook_name)
            # pluggy calls the last registered first; keep its order.
            self._impls[hook_name] = [
                (impl.plugin_name, impl.function, tuple(impl.argnames))
                for impl in reversed(caller.get_hookimpls())
            ]

    async def admit(self, context: Any) -> list[Any]:
        """Every ``admit_request`` answer that is not ``None``; a raising plugin is logged and counted."""
        answers = []
        for plugin_name, function, argnames in self._impls["admit_request"]:
            try:
                answer = await await_me_maybe(function(*[{"context": context}[name] for name in argnames]))
            except Exception:  # noqa: BLE001 - a plugin bug must never fail a proxied request
                self.errors[(plugin_name, "admit_request")] += 1
                log.exception("plugin %s raised in admit_request", plugin_name,
                              extra={"plugin": plugin_name, "hook": "admit_request"})
                continue
            if answer is not None:
                answers.append(answer)
        return answers

    async def call(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of ``hook_name``; a raising one is logged and counted."""
        for plugin_name, function, argnames in self._impls[hook_name]:
            try:
                result = function(*[kwargs[name] for name in argnames])
                if result is not None and inspect.isawaitable(result):  # most observers are plain functions
                    await result
            except Exception:  # noqa: BLE001 - a plugin bug must never fail a proxied request
                self.errors[(plugin_name, hook_name)] += 1
                log.exception("plugin %s raised in %s", plugin_name, hook_name, extra={"plugin": plugin_name, "hook": hook_name})


async def call_lifecycle_hook(pm: pluggy.PluginManager, hook_name: str, *, reverse: bool = False, **kwargs: Any) -> None:
    """Call ``on_startup`` (fail fast) or ``on_shutdown`` (log and go on) on every plugin.

    ``reverse`` runs them in the opposite order, so shutdown mirrors start-up.
    """
    impls = list(reversed(getattr(pm.hook, hook_name).get_hookimpls()))
    if reverse:
        impls.reverse()
    for impl in impls:
        try:
            await await_me_maybe(impl.function(*[kwargs[name] for name in impl.argnames]))
        except Exception as exc:
            if hook_name == "on_startup":
                raise StartupError(f"plugin {impl.plugin_name} failed to start: {exc}") from exc
            log.exception("plugin %s raised in %s", impl.plugin_name, hook_name)
