"""Plugins' start-up and shutdown: within SERVER__SHUTDOWN_TIMEOUT_SECONDS, and whatever one of them raises."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ccproxy_core import hookimpl
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.lifecycle import start_plugins, stop_plugins
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


class BlocksWhileStopping(Lifecycle):
    @hookimpl
    def on_shutdown(self):
        self.journal.append(f"stopping {self.name}")
        time.sleep(0.5)


def test_a_synchronous_shutdown_past_its_share_is_named_not_the_plugins_after_it(caplog):
    journal: list[str] = []
    host = host_with(NeverStops("next", journal), BlocksWhileStopping("slow", journal), shutdown_timeout_seconds=0.4)
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    asyncio.run(asyncio.wait_for(stop_plugins(host, ["next", "slow"]), 5))
    assert journal == ["stopping slow", "stopping next"]
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("plugin slow took 0.5 s in on_shutdown, past its share of 0.2 s") for m in messages)


class WritesItsQueue(Lifecycle):
    """A store's stop: some awaited work, as writing the records queued since the last flush."""

    @hookimpl
    async def on_shutdown(self):
        await asyncio.sleep(0.1)
        self.journal.append(f"wrote {self.name}")


def test_a_plugin_that_blocks_past_the_whole_shutdown_time_leaves_the_store_after_it_its_own_share(caplog):
    journal: list[str] = []
    host = host_with(
        WritesItsQueue("store", journal), BlocksWhileStopping("slow", journal), shutdown_timeout_seconds=0.4
    )
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    asyncio.run(asyncio.wait_for(stop_plugins(host, ["store", "slow"]), 5))
    # "slow" took 0.5 s of the 0.4; the store still had its equal share (0.2 s), not the nothing left.
    assert journal == ["stopping slow", "wrote store"]
    assert not any("plugin store did not stop" in r.getMessage() for r in caplog.records)


class RaisesOnItsOwn(Lifecycle):
    """Its start and stop end with what ``raised`` makes: ``sys.exit()``, or the CancelledError of a task of
    its own, as a plugin's helper task might give it."""

    def __init__(self, name: str, journal: list[str], raised: BaseException) -> None:
        super().__init__(name, journal)
        self.raised = raised

    @hookimpl
    async def on_startup(self):
        raise self.raised

    @hookimpl
    def on_shutdown(self):
        raise self.raised


@pytest.mark.parametrize(
    "raised", [SystemExit("stopping for good"), asyncio.CancelledError("its own helper task")], ids=repr
)
def test_sys_exit_or_a_cancellation_of_a_plugins_own_is_its_failure_and_the_others_still_stop(caplog, raised):
    # Before, either went through the plugins' start and stop: the plugins after it (the stores) never wrote
    # their queues, and a failed start-up was a traceback, not the plugin's name.
    journal: list[str] = []
    host = host_with(Lifecycle("store", journal), RaisesOnItsOwn("raises", journal, raised))
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    asyncio.run(stop_plugins(host, ["store", "raises"]))
    assert journal == ["stop store"]
    assert any(r.getMessage() == "plugin raises raised in on_shutdown" for r in caplog.records)
    with pytest.raises(StartupError, match=f"plugin raises failed to start: {raised}"):
        asyncio.run(start_plugins(host))
    assert journal == ["stop store", "start store", "stop store"]


class ExitsWhileStopping(Lifecycle):
    @hookimpl
    async def on_shutdown(self):
        await asyncio.sleep(0)
        raise SystemExit("stopping for good")


def test_an_async_shutdown_calling_sys_exit_is_its_failure_and_the_store_before_it_still_stops(caplog):
    # Before, the SystemExit left its task and ended the event loop: the store never wrote its queue.
    journal: list[str] = []
    host = host_with(Lifecycle("store", journal), ExitsWhileStopping("exits", journal))
    caplog.set_level(logging.ERROR, logger="ccproxy.plugins")
    asyncio.run(stop_plugins(host, ["store", "exits"]))
    assert journal == ["stop store"]
    assert any(r.getMessage() == "plugin exits raised in on_shutdown" for r in caplog.records)


def test_a_shutdown_that_is_itself_cancelled_still_ends():
    journal: list[str] = []
    host = host_with(Lifecycle("store", journal), NeverStops("stuck", journal), shutdown_timeout_seconds=30)

    async def cancelled_shutdown() -> None:
        stopping = asyncio.ensure_future(stop_plugins(host, ["store", "stuck"]))
        await asyncio.sleep(0.1)
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping

    asyncio.run(asyncio.wait_for(cancelled_shutdown(), 5))


class SeesItsTime(Lifecycle):
    @hookimpl
    def on_shutdown(self, ccproxy):
        self.journal.append(f"{self.name} has {ccproxy.seconds_to_stop():.1f} s")


def test_a_plugin_stopping_is_told_the_seconds_of_its_share_and_none_once_all_have_stopped():
    journal: list[str] = []
    host = host_with(SeesItsTime("first", journal), SeesItsTime("last", journal), shutdown_timeout_seconds=4)
    assert host.seconds_to_stop() is None
    asyncio.run(stop_plugins(host, ["first", "last"]))
    # A store writing its queue gives up in time for its drops to be counted before the plugins after it stop.
    assert journal == ["last has 2.0 s", "first has 4.0 s"]
    assert host.seconds_to_stop() is None
