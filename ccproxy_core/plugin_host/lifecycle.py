"""Start-up and shutdown of plugins: in a documented order, with rollback.

Order: plugins whose ``on_startup`` is ``tryfirst``, then the others in registration order
(installed plugins by name, then objects registered by hand), then ``trylast`` ones; a
plugin that names others in ``PluginSpec.starts_after`` is moved after them. Shutdown runs
in the reverse order. When a plugin fails to start, the plugins already started are shut
down before the error is raised, so nothing they opened (threads, files) is left running.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.dispatch import raise_if_task_cancelled
from ccproxy_core.plugin_host.hook_limits import contained
from ccproxy_core.plugin_host.plugin_spec import specs_of

if TYPE_CHECKING:
    import pluggy

    from ccproxy_core.plugin_host.host import Ccproxy

log = logging.getLogger("ccproxy.plugins")


def plugin_order(pm: pluggy.PluginManager) -> list[str]:
    """Names of the registered plugins in start-up order."""
    registered = [name for name, plugin in pm.list_name_plugin() if plugin is not None]
    rank = {
        impl.plugin_name: 0 if impl.tryfirst else 2 if impl.trylast else 1
        for impl in pm.hook.on_startup.get_hookimpls()
    }
    ordered = sorted(registered, key=lambda name: rank.get(name, 1))
    after = {
        name: [n for n in spec.starts_after if n in registered and n != name] for name, spec in specs_of(pm).items()
    }
    return _after_what_they_need(ordered, after)


def _after_what_they_need(ordered: list[str], after: dict[str, list[str]]) -> list[str]:
    """``ordered``, each name moved after the names it needs; stable otherwise."""
    placed: list[str] = []
    visiting: set[str] = set()

    def place(name: str) -> None:
        if name in placed:
            return
        if name in visiting:
            raise StartupError(f"plugins {' and '.join(sorted(visiting))} each start after the other (starts_after)")
        visiting.add(name)
        for needed in after.get(name, []):
            place(needed)
        visiting.discard(name)
        placed.append(name)

    for name in ordered:
        place(name)
    return placed


def _impls_by_plugin(pm: pluggy.PluginManager, hook_name: str) -> dict[str, pluggy.HookImpl]:
    return {impl.plugin_name: impl for impl in getattr(pm.hook, hook_name).get_hookimpls()}


async def start_plugins(host: Ccproxy) -> list[str]:
    """Run every ``on_startup`` in order; on a failure, shut down those started and raise.

    A stop asked for (SIGTERM, Ctrl-C: the app's ``state.draining``) while an ``async def`` one
    runs cancels it, and is a failed start too: the server would otherwise wait for it for ever.

    Returns the start-up order, which ``stop_plugins`` reverses. Sets ``host.started`` at the end (a new
    event for each start: an app may be started again, in another event loop).
    """
    host.started = asyncio.Event()
    pm = host.plugin_manager
    order = plugin_order(pm)
    startups = _impls_by_plugin(pm, "on_startup")
    arguments = {"app": host.app, "settings": host.settings, "ccproxy": host}
    draining = getattr(host.app.state, "draining", None)
    for position, name in enumerate(order):
        impl = startups.get(name)
        if impl is None:
            continue
        watch = threading.Timer(SLOW_START_SECONDS, _still_starting, (name,))
        watch.daemon = True
        watch.start()
        try:
            result = impl.function(*[arguments[arg] for arg in impl.argnames])
            if inspect.isawaitable(result):
                await _unless_stopped(result, draining)
        except _StopAsked:
            await stop_plugins(host, order[:position])
            raise StartupError(
                f"plugin {name} was still starting (on_startup) when ccproxy was told to stop; it was cancelled, "
                "and ccproxy stops without serving"
            ) from None
        except BaseException as exc:  # sys.exit() or a CancelledError of its own too
            raise_if_task_cancelled()
            await stop_plugins(host, order[:position])
            raise StartupError(f"plugin {name} failed to start: {exc}") from exc
        finally:
            watch.cancel()
    host.started.set()
    return order


SLOW_START_SECONDS = 10.0
"""How long a plugin's ``on_startup`` runs before the operator is told which plugin ccproxy waits for."""


def _still_starting(name: str) -> None:
    # From a thread of its own: a plain ``def`` that blocks holds the event loop, and would hold this line too.
    log.warning(
        "plugin %s has been starting (on_startup) for %.0f s; ccproxy serves once it returns. One that never does "
        "is stopped by disabling it (PLUGINS__DISABLED=%s)",
        name,
        SLOW_START_SECONDS,
        name,
    )


STOP_CHECK_SECONDS = 0.1
"""How often a plugin's ``on_startup`` under way looks whether the server was told to stop (as uvicorn's own loop)."""
CANCELLED_START_SECONDS = 1.0
"""How long a cancelled ``on_startup`` may take to clean up before the plugins started before it stop."""


class _StopAsked(Exception):
    """The server was told to stop while a plugin's ``on_startup`` ran; it was cancelled."""


async def _unless_stopped(awaitable: Awaitable[object], draining: threading.Event | None) -> None:
    """Await ``awaitable``, unless ``draining`` is set first: then cancel it and raise :class:`_StopAsked`."""
    task = asyncio.ensure_future(contained(awaitable))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=STOP_CHECK_SECONDS)
            if done:
                if (raised := task.result()[1]) is not None:
                    raise raised
                return
            if draining is not None and draining.is_set():
                task.cancel()
                await asyncio.wait({task}, timeout=CANCELLED_START_SECONDS)  # one ignoring it is left behind
                raise _StopAsked
    finally:
        task.cancel()  # a no-op once it is done; else the start-up itself was cancelled


PLUGIN_SHUTDOWN_SECONDS = 15.0
"""The most the plugins' ``on_shutdown`` take together, so a stop ends within the drain's timeout
plus this (the margin docs/deployment.md gives systemd's ``TimeoutStopSec``)."""


async def stop_plugins(host: Ccproxy, order: list[str]) -> None:
    """Run ``on_shutdown`` of the plugins in ``order``, last first; a raise is logged and the others go on.

    Together they have ``SERVER__SHUTDOWN_TIMEOUT_SECONDS``, at most :data:`PLUGIN_SHUTDOWN_SECONDS`
    (they stop after the drain, which had that timeout already): each plugin gets an equal share of
    the time left when its turn comes, and never less than an equal share of the whole, so a plugin
    that overruns (a synchronous one cannot be cut off) does not take the time of those after it,
    such as a store writing its queued records. One that has not returned by then is logged and
    left behind (cancelled), and the others still stop.
    """
    shutdowns = _impls_by_plugin(host.plugin_manager, "on_shutdown")
    arguments = {"app": host.app, "settings": host.settings, "ccproxy": host}
    stopping = [name for name in reversed(order) if name in shutdowns]
    loop = asyncio.get_running_loop()
    total = min(host.settings.server.shutdown_timeout_seconds, PLUGIN_SHUTDOWN_SECONDS)
    deadline, fair = loop.time() + total, total / max(1, len(stopping))
    for position, name in enumerate(stopping):
        impl = shutdowns[name]
        share = max(fair, (deadline - loop.time()) / (len(stopping) - position))
        called = loop.time()
        host.stop_by = time.monotonic() + share
        try:
            result = impl.function(*[arguments[arg] for arg in impl.argnames])
            _blame_overrun(name, loop.time() - called, share)
            if inspect.isawaitable(result):
                await _within(result, share, name)
        except BaseException:  # sys.exit() too: the stores after it must still write their queues
            raise_if_task_cancelled()
            log.exception("plugin %s raised in on_shutdown", name, extra={"plugin": name, "hook": "on_shutdown"})
    host.stop_by = None
    for failures in getattr(host.plugin_manager, "hook_failures", {}).values():
        failures.report_held_back()


def _blame_overrun(name: str, took: float, share: float) -> None:
    """Log a plugin whose synchronous ``on_shutdown`` ran past its share: it cannot be cut off, and the
    plugins after it would otherwise seem the slow ones."""
    if took > share:
        log.error(
            "plugin %s took %.1f s in on_shutdown, past its share of %.1f s, holding up the plugins after it "
            "(a synchronous on_shutdown cannot be cut off: make it async def)",
            name,
            took,
            share,
            extra={"plugin": name, "hook": "on_shutdown"},
        )


async def _within(awaitable: Awaitable[object], seconds: float, name: str) -> None:
    """Await ``awaitable`` for ``seconds`` at most; past that, cancel it and log the plugin that did not stop."""
    # A task must not raise sys.exit()'s SystemExit: asyncio would end the event loop with it.
    task = asyncio.ensure_future(contained(awaitable))
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if task in done:
        if (raised := task.result()[1]) is not None:  # its exception, if any, is the caller's to log
            raise raised
        return
    task.cancel()  # not awaited: a plugin that ignores its cancellation must not hold the shutdown either
    log.error(
        "plugin %s did not stop within %.1f s (its share of the plugins' shutdown time); the others stop now",
        name,
        seconds,
        extra={"plugin": name, "hook": "on_shutdown"},
    )
