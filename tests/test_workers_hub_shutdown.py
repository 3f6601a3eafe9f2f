"""The hub and a worker's channel at shutdown, over real unix sockets in one event loop: nothing silently lost.

A worker that left before its admission answer came stops only that answer (its other events are
still read); a channel the hub does not read in time says how many events and records it dropped;
a hub out of time says how many records it gives up.
"""

from __future__ import annotations

import asyncio
import logging
import os

from ccproxy_core import hookimpl
from ccproxy_core.accounting.record import RequestContext
from ccproxy_core.runtime.workers import channel as channel_module
from ccproxy_core.runtime.workers.channel import HubChannel, encode
from ccproxy_core.runtime.workers.codec import context_to_wire, record_to_wire
from tests.conftest import HookRecorder
from tests.test_workers_channel import Doorkeeper, context, hub_for
from tests.test_workers_codec import a_record


class SlowStart:
    """An ``async def on_request_start`` that takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @hookimpl
    async def on_request_start(self, context: RequestContext) -> None:
        await asyncio.sleep(self.seconds)


def events(pid: int, request_ids: list[str], ask: str) -> bytes:
    """What a worker writes: hello, a start and an end per request, an admission question after ``ask``'s start."""
    lines = [encode({"t": "hello", "worker": 1, "pid": pid})]
    for request_id in request_ids:
        lines.append(encode({"t": "start", "ctx": context_to_wire(context(request_id))}))
        if request_id == ask:
            lines.append(encode({"t": "admit", "n": 1, "id": request_id}))
        lines.append(encode({"t": "end", "rec": record_to_wire(a_record(request_id=request_id))}))
    return b"".join(lines)


async def a_worker_that_leaves(path: str, written: bytes) -> None:
    """Connect, write ``written``, wait for the welcome (the hub has read the hello), and close."""
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(written)
    await writer.drain()
    await reader.readline()
    writer.close()
    await writer.wait_closed()


def test_a_worker_gone_before_its_admission_answer_still_has_every_record_read(tmp_path):
    # The worker wrote its events and left; answering its admission question then fails (a broken pipe).
    # Before, that failure closed the connection, and the events after the question were never read.
    recorder = HookRecorder()
    ids = [f"{number:032x}" for number in range(6)]

    async def scenario():
        hub = hub_for(recorder, str(tmp_path / "events.sock"), SlowStart(0.05), Doorkeeper())
        await hub.start()
        await a_worker_that_leaves(str(tmp_path / "events.sock"), events(os.getpid() + 1, ids, ask=ids[0]))
        await hub.worker_exited(os.getpid() + 1, 0)
        await hub.close()
        return hub

    hub = asyncio.run(scenario())
    assert [record.request_id for record in recorder.ends] == ids
    assert all(record.error_type is None for record in recorder.ends)
    assert hub.records_lost == 0 and not hub.in_flight


def test_a_hub_out_of_time_counts_and_logs_the_records_it_gives_up(tmp_path, caplog):
    recorder = HookRecorder()
    ids = [f"{number:032x}" for number in range(10)]

    async def scenario():
        hub = hub_for(recorder, str(tmp_path / "events.sock"), SlowStart(0.2))
        await hub.start()
        await a_worker_that_leaves(str(tmp_path / "events.sock"), events(os.getpid() + 2, ids, ask=""))
        await hub.worker_exited(os.getpid() + 2, 0)
        await hub.close(within=0.5)  # time for the hooks of two or three requests
        return hub

    with caplog.at_level(logging.ERROR, logger="ccproxy.workers"):
        hub = asyncio.run(scenario())
    recorded = len(recorder.ends)
    assert 1 <= recorded < len(ids) and hub.records_lost == len(ids) - recorded
    assert all(record.error_type is None for record in recorder.ends), "no ccproxy_worker_exited record"
    assert any(f"{len(ids) - recorded} record(s) lost" in line for line in caplog.messages), caplog.messages


def test_a_channel_the_hub_does_not_read_in_time_says_what_it_dropped(tmp_path, caplog, monkeypatch):
    path = str(tmp_path / "events.sock")
    # The kernel's default buffer, a few hundred KB: the events past it wait in the worker.
    monkeypatch.setattr(channel_module, "kernel_holds_more", lambda sock: None)

    async def scenario():
        async def welcome_then_read_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readline()
            writer.write(encode({"t": "welcome", "admit": False, "plugins": []}))
            await asyncio.sleep(30)

        server = await asyncio.start_unix_server(welcome_then_read_nothing, path)
        channel = HubChannel(path, worker=7)
        await channel.open()
        record = a_record()
        for _ in range(2000):  # some 2 MB: more than the kernel's socket buffers hold
            await channel.start(context(record.request_id))
            await channel.end(None, record)
        await channel.close(flush_within=0.3)
        server.close()
        return channel.dropped

    with caplog.at_level(logging.ERROR, logger="ccproxy.workers"):
        dropped = asyncio.run(scenario())
    assert 0 < dropped < 4000
    lines = [line for line in caplog.messages if "stopped before the hub took" in line]
    assert len(lines) == 1 and f"took {dropped} request event(s)" in lines[0], caplog.messages
    assert f"{dropped // 2} record(s) lost" in lines[0] or f"{(dropped + 1) // 2} record(s) lost" in lines[0]
