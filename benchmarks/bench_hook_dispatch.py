"""What calling the request hooks costs per request (on_request_start + on_request_end).

Three ways, same guarded implementations: ccproxy's dispatch (direct calls while no wrapper
is registered), pluggy's own call (what runs when a wrapper is registered), and the
hand-written loop ccproxy used before hooks went through pluggy. Prints microseconds per
request (CPU time, best of 15 runs) for 0, 1, 3 and 6 no-op plugins, 1 and 3 ``async def``
no-op plugins, and the built-in metrics plugin.
"""

from __future__ import annotations

import asyncio
import inspect
import time

from bench_metrics_hooks import CONTEXT, RECORD
from fastapi import FastAPI

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.dispatch import RequestHooks
from ccproxy_core.plugin_host.host import Ccproxy
from ccproxy_core.plugin_host.plugins import get_plugin_manager
from ccproxy_core.testing import make_settings

REQUESTS = 5_000


class NoOp:
    @hookimpl
    def on_request_start(self, context):
        pass

    @hookimpl
    def on_request_end(self, context, record):
        pass


class AsyncNoOp:
    """The same as ``async def`` implementations that finish without suspending (most async plugins)."""

    @hookimpl
    async def on_request_start(self, context):
        pass

    @hookimpl
    async def on_request_end(self, context, record):
        pass


class PluggyOnly(RequestHooks):
    """The same, always through pluggy's own call (as when a wrapper is registered)."""

    __slots__ = ()

    def _refresh(self) -> None:
        super()._refresh()
        self._direct_start = self._direct_end = None


class HandLoop:
    """The hand-written dispatch: each implementation called on its own, in try/except."""

    def __init__(self, pm) -> None:
        self._impls = {
            name: [(impl.function, impl.argnames) for impl in reversed(getattr(pm.hook, name).get_hookimpls())]
            for name in ("on_request_start", "on_request_end")
        }

    async def call(self, hook_name: str, **kwargs) -> None:
        for function, argnames in self._impls[hook_name]:
            try:
                result = function(*[kwargs[name] for name in argnames])
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception:  # noqa: BLE001, S110 - mirrors the guarded dispatch being measured
                pass


def build(plugins: list[object], **observability) -> tuple[Ccproxy, object]:
    settings = make_settings("http://127.0.0.1:1", observability=observability)
    pm = get_plugin_manager(settings)
    for plugin in plugins:
        pm.register(plugin)
    app = FastAPI()
    host = Ccproxy(app, settings, pm)
    app.state.ccproxy, app.state.settings = host, settings
    return host, pm


async def per_request_us(start, end) -> float:
    best = float("inf")
    for _ in range(15):
        # CPU time of this thread: on a shared machine, time spent descheduled is not the dispatch's.
        began = time.thread_time()
        for _ in range(REQUESTS):
            await start()
            await end()
        best = min(best, (time.thread_time() - began) / REQUESTS)
    return best * 1e6


async def measure(label: str, plugins: list[object], **observability) -> None:
    host, pm = build(plugins, **observability)
    for impl in pm.hook.on_startup.get_hookimpls():
        impl.function(*[{"ccproxy": host, "app": host.app, "settings": host.settings}[a] for a in impl.argnames])
    hooks, pluggy_only, loop = RequestHooks(pm, host), PluggyOnly(pm, host), HandLoop(pm)
    direct = await per_request_us(lambda: hooks.start(CONTEXT), lambda: hooks.end(CONTEXT, RECORD))
    through_pluggy = await per_request_us(lambda: pluggy_only.start(CONTEXT), lambda: pluggy_only.end(CONTEXT, RECORD))
    by_hand = await per_request_us(
        lambda: loop.call("on_request_start", context=CONTEXT, ccproxy=host),
        lambda: loop.call("on_request_end", context=CONTEXT, record=RECORD, ccproxy=host),
    )
    print(
        f"{label:<26} ccproxy {direct:6.2f} us   via pluggy's call {through_pluggy:6.2f} us   "
        f"old hand loop {by_hand:6.2f} us"
    )


async def main() -> None:
    for count in (0, 1, 3, 6):
        await measure(f"{count} no-op plugin(s)", [NoOp() for _ in range(count)])
    for count in (1, 3):
        await measure(f"{count} async no-op plugin(s)", [AsyncNoOp() for _ in range(count)])
    await measure("built-in metrics plugin", [], metrics_endpoint_enabled=True)


if __name__ == "__main__":
    asyncio.run(main())
