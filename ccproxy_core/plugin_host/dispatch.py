"""Calling plugin hooks under the two error policies of the contract.

Request hooks are called through pluggy, so ``tryfirst``/``trylast``, ``specname`` and
wrappers behave as pluggy's users expect. They are also isolated: when a plugin is
registered, each of its request-hook functions is wrapped once in a guard that catches
what it raises, logs it with the plugin and hook name, counts it, and lets the other
implementations and the request go on. Guarding at registration keeps the per-request
cost to one extra Python call per implementation. An ``async def`` implementation that has
not finished within its limit (``hook_limits.HOOK_SECONDS``) is cancelled, and counted and
logged the same way.

While no wrapper implements a request hook and no tracing is on, :class:`RequestHooks`
skips pluggy's generic call machinery and calls the guarded functions itself, in the
order pluggy would (``get_hookimpls()`` reversed): the same calls, some microseconds less
per request (``benchmarks/bench_hook_dispatch.py``). The list is re-read whenever a plugin
is registered or unregistered.

Build-time and lifecycle hooks fail fast with the plugin's name (see ``lifecycle.py``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from types import CoroutineType
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from ccproxy_core.plugin_host.admission import Admission, admission_problem
from ccproxy_core.plugin_host.direct_calls import Direct, direct_calls
from ccproxy_core.plugin_host.hook_failures import HookFailures
from ccproxy_core.plugin_host.hook_limits import OVERRAN, Overran, finish_within, resumed
from ccproxy_core.plugin_host.plugin_spec import BUILT_IN_DISTRIBUTION as BUILT_IN
from ccproxy_core.plugin_host.request_facts import changes_log, facts_of, put_back

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import AccessRecord, RequestContext
    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.plugin_host.plugin_spec import PluginSpec
    from ccproxy_core.plugin_host.plugins import PluginInfo

log = logging.getLogger("ccproxy.plugins")

T = TypeVar("T")

REQUEST_HOOKS = ("on_request_start", "admit_request", "on_request_end")
ONCE_PER_PLUGIN_HOOKS = ("register_plugin", "register_routes", "on_startup", "on_shutdown")
AWAITED_HOOKS = (*REQUEST_HOOKS, "on_startup", "on_shutdown")
"""The hooks whose ``async def`` implementations ccproxy awaits; it uses every other hook's answer as it is returned."""
_GUARDED = "_ccproxy_guarded"
BLOCKING_HOOK_SECONDS = 0.1
"""A plain ``def`` request hook that runs longer than this has held up every request of the process:
it is counted as the plugin's failure and logged by name (asyncio's debug mode draws the line there too)."""
BLOCKED = (
    "its %s held the event loop for %.0f ms, stalling every request meanwhile "
    "(make it async def and await its slow work)"
)


async def await_me_maybe(value: T | Awaitable[T]) -> T:
    """Let a hook implementation be ``def`` or ``async def``."""
    if inspect.isawaitable(value):
        return await value
    return value


class CcproxyPluginManager(pluggy.PluginManager):
    """pluggy's manager, guarding each request-hook implementation as it is registered.

    ``hook_errors`` counts what guarded implementations raised, by ``(plugin, hook)``.
    A plugin registered at any time (also while the server runs) is guarded and called.
    """

    def __init__(self, project_name: str) -> None:
        super().__init__(project_name)
        self.hook_errors: Counter[tuple[str, str]] = Counter()
        self.hook_failures: dict[tuple[str, str], HookFailures] = {}
        """The failures of each registered plugin's request hooks, by ``(plugin, hook)``: those not logged one
        by one are told at shutdown, or when the plugin is unregistered."""
        self.generation = 0
        """Changes whenever a plugin is registered or unregistered."""
        self.ccproxy_plugins: list[PluginInfo] = []
        """Every discovered plugin, enabled or not, once ``get_plugin_manager`` has loaded them."""
        self.ccproxy_specs: dict[str, PluginSpec] = {}
        """The ``PluginSpec`` of every loaded plugin, enabled or not."""

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        """Unregister as pluggy does; callers caching implementations see the change."""
        self.generation += 1
        named = name if name is not None else self.get_name(plugin) if plugin is not None else None
        for hook in REQUEST_HOOKS:
            if (failures := self.hook_failures.pop((named or "", hook), None)) is not None:
                failures.report_held_back()
        return super().unregister(plugin, name)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register as pluggy does, refuse implementations ccproxy would not run as written, guard request hooks."""
        self.generation += 1
        plugin_name = super().register(plugin, name)
        if plugin_name is None:
            return None
        try:
            self._check_implementations(plugin)
        except pluggy.PluginValidationError:
            self.unregister(plugin)
            raise
        for caller in self.get_hookcallers(plugin) or []:
            if caller.name in REQUEST_HOOKS:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not getattr(impl.function, _GUARDED, False):
                        key = (impl.plugin_name, caller.name)
                        if (failures := self.hook_failures.get(key)) is None:
                            failures = self.hook_failures[key] = HookFailures(*key, self.hook_errors)
                        impl.function = _guard(impl, caller.name, failures)  # type: ignore[misc]
        # Again: the event loop may have re-read the implementations before they were guarded.
        self.generation += 1
        return plugin_name

    def _check_implementations(self, plugin: object) -> None:
        """Refuse a wrapper where none can run, and an async implementation ccproxy would never run."""
        for caller in self.get_hookcallers(plugin) or []:
            if caller.spec is None:  # an unknown hook: check_pending names it
                continue
            for impl in [impl for impl in caller.get_hookimpls() if impl.plugin is plugin]:
                if caller.name in ONCE_PER_PLUGIN_HOOKS and (impl.wrapper or impl.hookwrapper):
                    raise pluggy.PluginValidationError(
                        plugin,
                        f"{caller.name} cannot be a wrapper (plugin {impl.plugin_name}): ccproxy calls it once per "
                        "plugin, in start-up order; drop wrapper=True/hookwrapper=True",
                    )
                if caller.name == "admit_request" and (impl.wrapper or impl.hookwrapper):
                    raise pluggy.PluginValidationError(
                        plugin,
                        f"admit_request cannot be a wrapper (plugin {impl.plugin_name}): each plugin's answer is "
                        "checked as it is given, and a wrapper could replace them unchecked; drop wrapper=True/hookwrapper=True",
                    )
                if (never_run := _never_run(caller.name, impl.function)) is not None:
                    raise pluggy.PluginValidationError(
                        plugin, f"{caller.name} of plugin {impl.plugin_name} is {never_run}"
                    )


def _never_run(hook: str, function: Callable[..., Any]) -> str | None:
    """What ``function`` is, when ccproxy would call it as ``hook`` and never run its body; else ``None``."""
    if hook in AWAITED_HOOKS:
        if inspect.isasyncgenfunction(function):
            return "an async generator (an async def with yield), which ccproxy never iterates; make it return instead"
    elif inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function):
        return "an async def, which ccproxy calls without awaiting it; make it a plain def"
    return None


def _guard(impl: pluggy.HookImpl, hook_name: str, failures: HookFailures) -> Callable[..., Any]:
    """``impl.function`` that never raises (a plugin bug must never fail a proxied request)."""
    function = impl.function
    check = _admission_checked if hook_name == "admit_request" else None
    if impl.wrapper or impl.hookwrapper:
        guarded: Callable[..., Any] = _guard_wrapper(function, failures, old_style=impl.hookwrapper)
    else:

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            called = time.perf_counter()
            try:
                result = function(*args, **kwargs)
            except BaseException:  # noqa: BLE001 - a plugin bug, sys.exit() too, must never fail a proxied request
                raise_if_task_cancelled()
                failures.raised()
                return None
            if result is not None and inspect.isawaitable(result):  # an async def implementation
                return _guard_awaitable(result, failures, check)
            if (held := time.perf_counter() - called) > BLOCKING_HOOK_SECONDS:
                failures.misbehaved(BLOCKED, failures.hook, held * 1000)
            return result if check is None else check(result, failures)

    setattr(guarded, _GUARDED, True)
    return guarded


async def _guard_awaitable(
    awaitable: Awaitable[Any], failures: HookFailures, check: Callable[[Any, HookFailures], Any] | None = None
) -> Any:
    try:
        if type(awaitable) is CoroutineType:  # stepped here: one that finishes at once costs no task, no timer
            try:
                yielded = awaitable.send(None)
            except StopIteration as done:
                result = done.value
            else:
                result = await finish_within(resumed(awaitable, yielded), failures.hook)
        else:
            result = await finish_within(awaitable, failures.hook)
    except Overran as overran:
        failures.misbehaved(OVERRAN, failures.hook, overran.seconds)
        return None
    except BaseException:  # noqa: BLE001 - a plugin bug, sys.exit() too, must never fail a proxied request
        raise_if_task_cancelled()
        failures.raised()
        return None
    return result if check is None else check(result, failures)


def _admission_checked(answer: Any, failures: HookFailures) -> Any:
    """``answer`` when it is ``None`` or a usable ``Admission``; else the plugin's failure, and ``None``."""
    if answer is None or (problem := admission_problem(answer)) is None:
        return answer
    failures.misbehaved("its admit_request answer was ignored: %s", problem)
    return None


def raise_if_task_cancelled() -> None:
    """Re-raise a ``CancelledError`` being handled when it cancels the task itself (a shutdown, a client gone).

    One a hook raised of its own (a task of its own was cancelled, say) is the hook's failure, as is
    any other ``BaseException`` it raised (``sys.exit()``, ``KeyboardInterrupt``, ``GeneratorExit``).
    Call it only from an ``except`` block.
    """
    task = asyncio.current_task() if _running_loop() else None
    if task is not None and task.cancelling():
        raise  # noqa: PLE0704 - called only from except blocks, to re-raise what they caught


def _running_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _guard_wrapper(
    function: Callable[..., Any], failures: HookFailures, old_style: bool
) -> Callable[..., Generator[None, Any, Any]]:
    """A wrapper whose own failures, before or after its ``yield``, are logged and counted, not raised.

    An ``old_style`` one (``hookwrapper=True``) is sent pluggy's ``Result`` and returns nothing.
    """

    @functools.wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Generator[None, Any, Any]:
        try:
            inner = function(*args, **kwargs)
            next(inner)
        except BaseException:  # noqa: BLE001 - failed before its yield: the others still run
            raise_if_task_cancelled()
            failures.raised()
            return (yield)
        try:
            outcome = yield
        except Exception as raised:  # another wrapper raised: let this one see it, as pluggy would
            try:
                inner.throw(raised)
            except StopIteration as finished:
                return _results_or_report(finished.value, [], failures)
            raise
        try:
            inner.send(outcome)
        except StopIteration as finished:
            return outcome if old_style else _results_or_report(finished.value, outcome, failures)
        except BaseException:  # noqa: BLE001 - failed after its yield: the call's result stands
            raise_if_task_cancelled()
            failures.raised()
            return outcome
        try:
            inner.close()
        except BaseException:  # noqa: BLE001 - raised as it was closed: the call's result stands
            raise_if_task_cancelled()
            failures.raised()
        log.error(
            "plugin %s: its %s wrapper yielded twice; its second part was skipped", failures.plugin, failures.hook
        )
        return outcome

    return guarded


def _results_or_report(returned: Any, outcome: list[Any], failures: HookFailures) -> list[Any]:
    """What a wrapper returned when it is the list of results a request hook gives; else its failure, and ``outcome``."""
    if isinstance(returned, list):
        return returned
    failures.misbehaved(
        "its %s wrapper returned %s, not the list of results (return what its yield gave)",
        failures.hook,
        type(returned).__name__,
    )
    return outcome


class RequestHooks:
    """The request hooks of one app, awaiting ``async def`` implementations.

    Called through pluggy when a wrapper or tracing needs its machinery; otherwise the
    guarded implementation functions are called directly, in pluggy's order.
    """

    __slots__ = ("_pm", "_start", "_admit", "_end", "_host", "_seen", "_direct_start", "_direct_end", "_log", "_others")

    def __init__(self, pm: pluggy.PluginManager, host: Ccproxy) -> None:
        self._pm, self._host = pm, host
        self._start, self._admit, self._end = pm.hook.on_request_start, pm.hook.admit_request, pm.hook.on_request_end
        self._seen = -1
        self._direct_start: Direct | None = None
        self._direct_end: Direct | None = None
        self._log = changes_log()
        # Per request hook, the plugins implementing it that are not ccproxy's own: only they may change facts.
        self._others: dict[str, tuple[str, ...]] = {"on_request_start": (), "admit_request": ()}

    def _refresh(self) -> None:
        self._seen = getattr(self._pm, "generation", -1)
        plain = isinstance(self._pm, CcproxyPluginManager)  # a plain manager has no guards: pluggy calls it
        self._direct_start = direct_calls(self._pm, self._start, ("context", "ccproxy")) if plain else None
        self._direct_end = direct_calls(self._pm, self._end, ("context", "record", "ccproxy")) if plain else None
        # ccproxy's own plugins leave the request's facts alone: hooks only they implement need no check.
        built_in = {info.name for info in getattr(self._pm, "ccproxy_plugins", ()) if info.distribution == BUILT_IN}
        self._others = {
            caller.name: tuple(impl.plugin_name for impl in caller.get_hookimpls() if impl.plugin_name not in built_in)
            for caller in (self._start, self._admit)
        }

    async def start(self, context: RequestContext) -> None:
        """Fire ``on_request_start``."""
        if self._seen != self._pm.generation:  # type: ignore[attr-defined]
            self._refresh()
        direct = self._direct_start
        facts = facts_of(context) if self._others["on_request_start"] else None
        if direct is None:
            results = self._start(context=context, ccproxy=self._host)
        else:
            arguments = (context, self._host)
            results = [function(*pick(arguments)) for function, pick in direct]
        for result in results:
            if result is not None and inspect.isawaitable(result):
                await result
        if facts is not None:
            put_back(context, facts, "on_request_start", self._log, self._others["on_request_start"])

    async def admit(self, context: RequestContext) -> list[Any]:
        """Every ``admit_request`` answer that is not ``None`` (a raising plugin's is none: it is guarded)."""
        if not self._admit.get_hookimpls():
            return []
        if self._seen != self._pm.generation:  # type: ignore[attr-defined]
            self._refresh()
        answers, facts = [], facts_of(context) if self._others["admit_request"] else None
        for returned in self._admit(context=context, ccproxy=self._host):
            answer = await returned if returned is not None and inspect.isawaitable(returned) else returned
            if isinstance(answer, Admission):  # a wrapper may have put anything in the results
                answers.append(answer)
        if facts is not None:
            put_back(context, facts, "admit_request", self._log, self._others["admit_request"])
        return answers

    async def end(self, context: RequestContext, record: AccessRecord) -> None:
        """Fire ``on_request_end``."""
        if self._seen != self._pm.generation:  # type: ignore[attr-defined]
            self._refresh()
        direct = self._direct_end
        if direct is None:
            results = self._end(context=context, record=record, ccproxy=self._host)
        else:
            arguments = (context, record, self._host)
            results = [function(*pick(arguments)) for function, pick in direct]
        for result in results:
            if result is not None and inspect.isawaitable(result):
                await result
