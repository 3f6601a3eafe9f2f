"""A worker's end of its event channel to the hub: one unix stream socket, one JSON object a line.

It stands where the plugins' request hooks stand in a single process: the worker's proxy
calls ``start``, ``admit`` and ``end`` on it. Each event is handed to the kernel when it
happens (no batching in the worker), and the kernel holds up to :data:`SOCKET_BUFFER_BYTES` the hub
has not read yet (:func:`kernel_holds_more`), so a worker killed outright loses none it had written
unless the hub is further behind than that.
While the hub cannot be reached, events wait in a bounded buffer and are sent, in order,
on reconnection; what does not fit is dropped, counted and logged. At shutdown the worker
waits until the kernel has taken every event it wrote (the hub may be behind, running slow
hooks), up to shortly before the supervisor would kill it; what it must give up then is
counted and logged, with the number of records lost.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import socket
from collections import deque
from typing import Any

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.plugin_host.admission import Admission
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.runtime.workers.codec import admissions_from_wire, context_to_wire, record_to_wire

log = logging.getLogger("ccproxy.workers")

PENDING_EVENTS = 50_000
"""Events kept while the hub is unreachable (some 100 MB at worst)."""
SOCKET_BUFFER_BYTES = 64 * 1024 * 1024
"""Bytes the kernel has not yet taken beyond which events are dropped rather than held."""
ADMIT_TIMEOUT_SECONDS = 10.0
DRAIN_MARGIN_SECONDS = 15.0
"""How much longer than SERVER__SHUTDOWN_TIMEOUT_SECONDS workers may take to stop before they are killed:
time to record the requests they cut and for the hub to take their events."""
FLUSH_EARLY_SECONDS = 2.0
"""A stopping worker gives up waiting for the hub this long before it would be killed, to say what it dropped."""
LINE_LIMIT = 16 * 1024 * 1024


def encode(message: dict[str, Any]) -> bytes:
    """One message as one line."""
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def kernel_holds_more(sock: socket.socket) -> None:
    """Let the kernel hold up to :data:`SOCKET_BUFFER_BYTES` of events the hub has not read yet.

    What the kernel holds survives this worker's death (the hub still reads it); what waits in the
    process when the kernel's buffer is full (a few hundred KB by default) dies with it, and the
    records of requests already answered with it. Root may go past the system's cap
    (``net.core.wmem_max``), others get up to it.
    """
    for option in (getattr(socket, "SO_SNDBUFFORCE", None), socket.SO_SNDBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER_BYTES)
            return
        except OSError:  # SO_SNDBUFFORCE needs CAP_NET_ADMIN
            continue


def _is_record(line: bytes) -> bool:
    return line.startswith(b'{"t":"end"')


class HubChannel:
    """Sends this worker's request events to the hub; asks it for admission when plugins decide that."""

    def __init__(self, socket_path: str, worker: int) -> None:
        self.socket_path, self.worker = socket_path, worker
        self.dropped = 0
        """Events dropped because the hub was unreachable too long (also logged)."""
        self.hub_admits = False
        """The hub has ``admit_request`` implementations: ask it before forwarding."""
        self.hub_plugins: list[str] = []
        self._writer: asyncio.StreamWriter | None = None
        self._pending: deque[bytes] = deque()
        self._written = 0
        """Bytes written on the current connection (the kernel has taken them but its transport's buffer)."""
        self._marks: deque[tuple[int, bool]] = deque()
        """Per event written on the current connection and maybe not yet taken: its end offset, is it a record."""
        self._answers: dict[int, asyncio.Future[list[Admission]]] = {}
        self._numbers = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._drop_log = RateLimitedLog(log)
        self._trouble_log = RateLimitedLog(log)

    async def open(self, connect_within: float = 30.0) -> None:
        """Connect and shake hands; keep reconnecting in the background when the connection drops."""
        self._task = asyncio.create_task(self._keep_connected())
        await asyncio.wait_for(self._connected.wait(), connect_within)

    async def start(self, context: RequestContext) -> None:
        """Send ``start`` with the request's context."""
        self._emit(encode({"t": "start", "ctx": context_to_wire(context)}))

    async def admit(self, context: RequestContext) -> list[Admission]:
        """The hub's ``admit_request`` answers; none when it has no such plugin or cannot be asked in time."""
        if not self.hub_admits:
            return []
        if self._writer is None:
            self._trouble_log.log("hub unreachable: request %s forwarded without admission", context.request_id)
            return []
        number = next(self._numbers)
        answer = self._answers[number] = asyncio.get_running_loop().create_future()
        self._writer.write(encode({"t": "admit", "n": number, "id": context.request_id}))
        try:
            return await asyncio.wait_for(answer, ADMIT_TIMEOUT_SECONDS)
        except TimeoutError:
            self._trouble_log.log(
                "hub gave no admission in %g s: request %s forwarded", ADMIT_TIMEOUT_SECONDS, context.request_id
            )
            return []
        finally:
            self._answers.pop(number, None)

    async def end(self, context: RequestContext, record: AccessRecord) -> None:
        """Send ``end`` with the final record."""
        self._emit(encode({"t": "end", "rec": record_to_wire(record)}))

    async def close(self, flush_within: float = 10.0) -> None:
        """Send what waits, wait (``flush_within`` seconds at most) until the kernel has taken every byte, then
        close: the hub reads what the kernel holds to the end, also once this process has exited. What had
        to be given up is counted and logged, with how many records it held."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_within
        # The reconnecting task flushes the pending events; this only waits for it, with a deadline.
        while (self._pending or self._unsent()) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        events, records = len(self._pending), sum(map(_is_record, self._pending))
        self._pending.clear()
        unsent = self._unsent()
        events, records = events + len(unsent), records + sum(record for _, record in unsent)
        if events:
            self.dropped += events
            log.error(
                "worker %d stopped before the hub took %d request event(s) in %g s: dropped, %d record(s) lost",
                self.worker,
                events,
                flush_within,
                records,
            )
        if self._writer is not None:
            self._writer.close()
        if self._task is not None:
            self._task.cancel()

    def _unsent(self) -> list[tuple[int, bool]]:
        """The events written on the connection that the kernel has not wholly taken yet (end offset, is a record)."""
        if self._writer is not None:
            self._forget_taken(self._writer)
        return list(self._marks)

    def _forget_taken(self, writer: asyncio.StreamWriter) -> None:
        taken = self._written - writer.transport.get_write_buffer_size()
        while self._marks and self._marks[0][0] <= taken:
            self._marks.popleft()

    def _write(self, writer: asyncio.StreamWriter, line: bytes) -> None:
        writer.write(line)
        self._written += len(line)
        self._marks.append((self._written, _is_record(line)))
        self._forget_taken(writer)

    def _emit(self, line: bytes) -> None:
        writer = self._writer
        if writer is not None and writer.is_closing():
            self._lose_connection()  # the reading side will notice and reconnect
            writer = None
        if writer is not None and writer.transport.get_write_buffer_size() < SOCKET_BUFFER_BYTES:
            self._write(writer, line)
        elif writer is not None:
            self._count_dropped(1, "the hub is not reading fast enough")
        elif self._closing:
            self._count_dropped(1, "the channel to the hub was already closed")
        elif len(self._pending) < PENDING_EVENTS:
            self._pending.append(line)
        else:
            self._count_dropped(1, "the hub has been unreachable too long")

    def _lose_connection(self) -> None:
        """Forget the connection; the events written on it that the kernel had not taken are dropped, and said so."""
        if unsent := self._unsent():
            self._count_dropped(len(unsent), "the connection to the hub broke before they were sent")
        self._writer, self._marks = None, deque()

    def _count_dropped(self, count: int, why: str) -> None:
        self.dropped += count
        self._drop_log.log(
            "worker %d dropped %d request event(s): %s (%d dropped so far)", self.worker, count, why, self.dropped
        )

    async def _keep_connected(self) -> None:
        pause = 0.05
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=LINE_LIMIT)
                kernel_holds_more(writer.get_extra_info("socket"))
                await self._handshake(reader, writer)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                if self._connected.is_set():
                    self._trouble_log.log("worker %d cannot reach the hub (%s); retrying", self.worker, exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 1.0)
                continue
            pause = 0.05
            await self._read_answers(reader)
            self._lose_connection()
            for answer in self._answers.values():
                if not answer.done():
                    answer.set_result([])
            if self._closing:
                return

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(encode({"t": "hello", "worker": self.worker, "pid": os.getpid()}))
        welcome = json.loads(await reader.readuntil(b"\n"))
        self.hub_admits, self.hub_plugins = bool(welcome["admit"]), list(welcome["plugins"])
        self._written, self._marks = 0, deque()
        while self._pending:  # in order, before any new event can be written
            self._write(writer, self._pending.popleft())
        self._writer = writer
        self._connected.set()

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                answer = self._answers.get(message.get("n"))
                if answer is not None and not answer.done():
                    answer.set_result(admissions_from_wire(message["answers"]))
        except (OSError, ValueError) as exc:
            log.warning("worker %d lost its channel to the hub: %s", self.worker, exc)
