"""A worker's event channel against the hub's end, over real unix sockets in one event loop.

Events arrive in order and fire the hooks of a real app's dispatcher; while the hub is away
they wait, bounded, and are sent on reconnection; what does not fit is dropped, counted and
logged; the requests of a worker that exits are recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import time
from datetime import UTC, datetime
from pathlib import Path

from ccproxy_core import hookimpl
from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.plugin_host.admission import Admission
from ccproxy_core.plugin_host.plugins import get_plugin_manager
from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.runtime.workers import channel as channel_module
from ccproxy_core.runtime.workers import hub as hub_module
from ccproxy_core.runtime.workers.channel import HubChannel
from ccproxy_core.runtime.workers.codec import context_of_record
from ccproxy_core.runtime.workers.hub import WORKER_EXITED, EventHub
from tests.conftest import HookRecorder
from tests.test_workers_codec import a_record


class Doorkeeper:
    """Refuses requests of project ``closed``."""

    @hookimpl
    def admit_request(self, context: RequestContext) -> Admission | None:
        return Admission(refuse_status=429, message="closed") if context.project == "closed" else None


def hub_for(recorder: HookRecorder, path: str, *plugins: object) -> EventHub:
    pm = get_plugin_manager(Settings(), [])
    for plugin in (recorder, *plugins):
        pm.register(plugin)
    app = create_app(Settings(), pm)
    return EventHub(app.state.proxy.hooks, lambda: bool(pm.hook.admit_request.get_hookimpls()), ["recorder"], path)


async def hub_and_channel(
    tmp_path, worker: int, recorder: HookRecorder, *plugins: object
) -> tuple[EventHub, HubChannel]:
    """A started hub with ``plugins``, and worker ``worker``'s open channel to it."""
    hub = hub_for(recorder, str(tmp_path / "events.sock"), *plugins)
    await hub.start()
    channel = HubChannel(str(tmp_path / "events.sock"), worker=worker)
    await channel.open()
    return hub, channel


def context(request_id: str, project: str | None = None) -> RequestContext:
    return RequestContext(
        request_id=request_id,
        method="POST",
        path="/v1/messages",
        endpoint="/v1/messages",
        query="",
        client_ip="127.0.0.1",
        user_agent=None,
        service_type="anthropic",
        model="claude-haiku-4-5",
        streaming=False,
        started_at=datetime.now(UTC),
        started_monotonic=time.perf_counter(),
        project=project,
    )


async def until(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "gave up waiting"
        await asyncio.sleep(0.01)


def test_events_arrive_in_order_and_admission_is_asked_of_the_hub(tmp_path):
    recorder = HookRecorder()

    async def scenario():
        hub, channel = await hub_and_channel(tmp_path, 1, recorder, Doorkeeper())
        assert channel.hub_admits and channel.hub_plugins == ["recorder"]
        for number in range(50):
            await channel.start(context(f"{number:032x}"))
            await channel.end(None, a_record(request_id=f"{number:032x}"))
        refused = context("c" * 32, project="closed")
        await channel.start(refused)
        answers = await channel.admit(refused)
        assert answers == [Admission(refuse_status=429, message="closed")]
        await channel.close()
        await until(lambda: len(recorder.ends) == 50 and not hub._connections)
        await hub.close()
        return hub

    hub = asyncio.run(scenario())
    assert [record.request_id for record in recorder.ends] == [f"{number:032x}" for number in range(50)]
    assert [c.request_id for c in recorder.starts[:50]] == [f"{number:032x}" for number in range(50)]
    assert hub.in_flight[next(iter(hub.in_flight))] == {"c" * 32: recorder.starts[-1]}


def test_events_wait_for_a_hub_that_went_away_and_overflow_is_counted_and_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(channel_module, "PENDING_EVENTS", 5)
    recorder = HookRecorder()
    path = str(tmp_path / "events.sock")

    async def scenario():
        hub = hub_for(recorder, path)
        await hub.start()
        channel = HubChannel(path, worker=3)
        await channel.open()
        await hub.close(within=0)  # as if the hub's process had gone: its end of every channel closes
        await until(lambda: channel._writer is None)
        for number in range(8):
            await channel.end(None, a_record(request_id=f"{number:032x}"))
        assert channel.dropped == 3
        again = hub_for(recorder, path)
        await again.start()
        await until(lambda: len(recorder.ends) == 5)
        await channel.close()
        await until(lambda: not again._connections)
        await again.close()

    with caplog.at_level(logging.WARNING, logger="ccproxy.workers"):
        asyncio.run(scenario())
    assert [record.request_id for record in recorder.ends] == [f"{number:032x}" for number in range(5)]
    assert any("dropped 1 request event(s): the hub has been unreachable too long" in line for line in caplog.messages)


def test_the_requests_of_a_worker_that_exits_are_recorded_once(tmp_path):
    recorder = HookRecorder()

    async def scenario():
        hub, channel = await hub_and_channel(tmp_path, 2, recorder)
        await channel.start(context("d" * 32))
        await channel.start(dataclasses.replace(context("e" * 32), client_request_id="client-7"))
        await channel.end(None, a_record(request_id="d" * 32))
        await channel.close()
        await hub.worker_exited(os.getpid(), -9)
        await hub.close()

    asyncio.run(scenario())
    assert [(r.request_id, r.error_type) for r in recorder.ends] == [("d" * 32, None), ("e" * 32, WORKER_EXITED)]
    assert recorder.ends[1].status_code == 502
    assert recorder.ends[1].client_request_id == "client-7"  # before, the client's own id was lost
    assert context_of_record(recorder.ends[1]).request_id == "e" * 32


class StuckEnd:
    """An ``async def on_request_end`` that never returns."""

    @hookimpl
    async def on_request_end(self) -> None:
        await asyncio.Event().wait()


def test_a_stuck_async_on_request_end_holds_up_neither_later_records_nor_admission(tmp_path, monkeypatch):
    monkeypatch.setattr(hub_module, "END_HOOKS_WAIT_SECONDS", 0.1, raising=False)
    recorder = HookRecorder()

    async def scenario():
        hub, channel = await hub_and_channel(tmp_path, 4, recorder, StuckEnd(), Doorkeeper())
        for number in range(3):
            await channel.start(context(f"{number:032x}"))
            await channel.end(None, a_record(request_id=f"{number:032x}"))
        refused = context("f" * 32, project="closed")
        await channel.start(refused)
        answers = await asyncio.wait_for(channel.admit(refused), 2)
        await until(lambda: len(recorder.ends) == 3, seconds=2)
        await channel.close()
        await hub.close()
        return answers

    assert asyncio.run(scenario()) == [Admission(refuse_status=429, message="closed")]


class Careless:
    """Answers ``admit_request`` with what is no ``Admission``."""

    @hookimpl
    def admit_request(self) -> object:
        return "no"


def test_an_unusable_admission_answer_leaves_the_hubs_channel_working(tmp_path):
    recorder = HookRecorder()

    async def scenario():
        hub, channel = await hub_and_channel(tmp_path, 5, recorder, Careless())
        connection = channel._writer
        asking = context("a" * 32)
        await channel.start(asking)
        answers = await asyncio.wait_for(channel.admit(asking), 2)
        await channel.end(None, a_record(request_id="a" * 32))
        await until(lambda: len(recorder.ends) == 1, seconds=2)
        still_connected = channel._writer is connection
        await channel.close()
        await hub.close()
        return answers, still_connected

    assert asyncio.run(scenario()) == ([], True)


def test_the_kernel_holds_the_events_the_hub_has_not_read_yet():
    # What the kernel holds, the hub still reads after the worker is killed; what waits in the worker's memory
    # dies with it. Before, the kernel took a few hundred KB: a killed worker lost the records of hundreds of
    # requests it had answered while the hub was behind.
    worker_end, hub_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with worker_end, hub_end:
        channel_module.kernel_holds_more(worker_end)
        system_cap = int(Path("/proc/sys/net/core/wmem_max").read_text())
        allowed = channel_module.SOCKET_BUFFER_BYTES if os.geteuid() == 0 else min(system_cap, 4 << 20)
        worker_end.setblocking(False)
        taken, piece = 0, b"e" * 65536
        with contextlib.suppress(BlockingIOError):
            while taken < 4 << 20:
                taken += worker_end.send(piece)
        assert taken >= min(allowed, 4 << 20) // 2  # unread by the hub end, held by the kernel
