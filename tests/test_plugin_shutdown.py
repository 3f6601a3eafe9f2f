"""Plugins' shutdown within SERVER__SHUTDOWN_TIMEOUT_SECONDS, however long one of them takes."""

from __future__ import annotations

import asyncio
import logging

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host.lifecycle import stop_plugins
from tests.test_plugin_contract import Lifecycle, host_with


class NeverStops(Lifecycle):
    @hookimpl
    async def on_shutdown(self):
        self.journal.append(f"stopping {self.name}")
        await asyncio.Event().wait()


def test_a_plugin_that_never_stops_has_its_share_of_the_shutdown_timeout_and_the_others_stop(caplog):
    journal: list[str] = []
    host = host_with(
        Lifecycle("first", journal),
        NeverStops("stuck", journal),
        Lifecycle("last", journal),
        shutdown_timeout_seconds=0.6,
    )
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")

    async def shutdown() -> float:
        began = asyncio.get_running_loop().time()
        await asyncio.wait_for(stop_plugins(host, ["first", "stuck", "last"]), 5)
        return asyncio.get_running_loop().time() - began

    took = asyncio.run(shutdown())
    assert journal == ["stop last", "stopping stuck", "stop first"]
    assert 0.2 < took < 0.6  # "stuck" had half of the time left when its turn came
    assert any("plugin stuck did not stop within 0.3 s" in r.getMessage() for r in caplog.records)
