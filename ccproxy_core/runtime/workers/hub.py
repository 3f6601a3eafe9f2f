"""The hub's end of the workers' event channels: every worker's requests reach the plugins here.

For each worker connection the hub reads ``start``, ``admit`` and ``end`` events in order,
keeps each request's context (with its ``state``) from start to end, and fires the request
hooks through the app's own dispatcher, so plugins see every worker's requests as if one
process had served them all. A connection is read to its end (EOF), also after its worker
has exited: what the worker wrote before it left is still in the socket. Only once the
worker has exited *and* its channel is read to the end do the requests it had started and
not ended get a record of their own (``ccproxy_worker_exited``): a real record merely still
queued is never replaced, nor doubled.

``on_request_end`` runs in a task of its own for each record, as it runs in each request's
own task in a single process: a slow or stuck ``async def`` implementation holds up only
that record, never the channel's reading (later requests, their admission, their records).
Admission answers are written on a socket of their own (a duplicate of the connection's), so
a worker that left before its answer came (a broken pipe) stops nothing but that answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from typing import Any

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.plugin_host.dispatch import RequestHooks
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.runtime.workers.channel import LINE_LIMIT, encode
from ccproxy_core.runtime.workers.codec import (
    admissions_to_wire,
    context_from_wire,
    context_of_record,
    record_from_wire,
)

log = logging.getLogger("ccproxy.workers")

WORKER_EXITED = "ccproxy_worker_exited"
WORKER_EXITED_STATUS = 502
"""The status recorded for a request whose worker died: the client got no complete answer."""
EOF_WAIT_SECONDS = 5.0
"""At shutdown, the least time the channels get to be read to their end once every worker has exited."""
UNREAD_LINE_SECONDS = 0.2
"""When the hub gives up on a channel, how long it waits for each further line it only counts."""
END_HOOKS_WAIT_SECONDS = 5.0
"""At shutdown, how long records' pending ``on_request_end`` may still run before they are cancelled."""
PENDING_END_HOOKS = 10_000
"""Records whose ``on_request_end`` may be awaited at once; beyond it, the hub reads on as they finish."""


class EventHub:
    """Receives the workers' request events and fires the plugins' request hooks for them."""

    def __init__(self, hooks: RequestHooks, admit_implemented: Any, plugin_names: list[str], socket_path: str) -> None:
        self.hooks, self.socket_path = hooks, socket_path
        self._admit_implemented = admit_implemented
        """Called at each handshake: do plugins implement ``admit_request`` (budgets register theirs at start-up)?"""
        self._plugin_names = plugin_names
        self.in_flight: dict[int, dict[str, RequestContext]] = {}
        """Started and not yet ended requests, by worker pid, then request id."""
        self._reading: dict[int, int] = {}
        """Per worker pid, how many of its connections are still being read."""
        self._exit_codes: dict[int, int | None] = {}
        """Workers that have exited, whose channel is still being read: their exit codes."""
        self._connections: set[asyncio.Task[Any]] = set()
        self._server: asyncio.AbstractServer | None = None
        self.bad_events = 0
        self.records_lost = 0
        """Records given up at shutdown (a channel not read to its end within the time allowed; also logged)."""
        self._ends: set[asyncio.Task[None]] = set()
        self._end_room = asyncio.Semaphore(PENDING_END_HOOKS)
        self._full_log = RateLimitedLog(log)

    async def start(self) -> None:
        """Listen on the channel socket."""
        self._server = await asyncio.start_unix_server(self._serve, self.socket_path, limit=LINE_LIMIT)

    async def close(self, within: float = EOF_WAIT_SECONDS) -> None:
        """Stop listening; read every channel to its end, ``within`` seconds at most, firing the hooks of every
        event; then count and log what is given up (call it once every worker has exited)."""
        if self._server is not None:
            self._server.close()
        if self._connections:
            _, behind = await asyncio.wait(set(self._connections), timeout=max(0.0, within))
            for task in behind:
                task.cancel(msg="shutdown time is up")
            if behind:
                await asyncio.wait(behind)
        await self._settle_ends()

    async def _settle_ends(self) -> None:
        """Give the records' ``on_request_end`` a while to finish, then cancel those still waiting."""
        if not self._ends:
            return
        _, stuck = await asyncio.wait(set(self._ends), timeout=END_HOOKS_WAIT_SECONDS)
        for task in stuck:
            task.cancel()
        if stuck:
            log.warning(
                "on_request_end of %d record(s) had not returned in %g s; cancelled", len(stuck), END_HOOKS_WAIT_SECONDS
            )

    async def worker_exited(self, pid: int, exit_code: int | None) -> None:
        """Note that a worker exited; once its channel is read to the end, record the requests it left unfinished.

        Returns at once: what the worker wrote is read (and its hooks run) in the channel's own task.
        """
        self._exit_codes[pid] = exit_code
        await self._settle_worker(pid)

    def requests_in_flight(self) -> int:
        """The workers' requests started and not yet ended, and ends whose hooks still run."""
        return sum(map(len, self.in_flight.values())) + len(self._ends)

    async def _settle_worker(self, pid: int) -> None:
        """Record the unfinished requests of worker ``pid`` if it has exited and nothing of it is left to read."""
        if pid not in self._exit_codes or self._reading.get(pid, 0):
            return
        exit_code = self._exit_codes.pop(pid)
        self._reading.pop(pid, None)
        orphans = self.in_flight.pop(pid, {})
        for context in orphans.values():
            await self._fire_end(context, exited_record(context, exit_code))
        if orphans:
            log.warning(
                "worker pid %d exited with %d request(s) unfinished; recorded as %s", pid, len(orphans), WORKER_EXITED
            )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        pid, answers, requests = None, None, None
        try:
            hello = json.loads(await reader.readuntil(b"\n"))
            pid = int(hello["pid"])
            self._reading[pid] = self._reading.get(pid, 0) + 1
            requests = self.in_flight.setdefault(pid, {})
            writer.write(
                encode({"t": "welcome", "admit": bool(self._admit_implemented()), "plugins": self._plugin_names})
            )
            answers = AnswerWriter(writer)
            while line := await reader.readline():
                await self._handle(json.loads(line), requests, answers)
        except asyncio.CancelledError:
            if requests is None:
                raise
            await self._give_up(pid, reader, requests)
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            log.error("worker pid %s: its event channel broke: %r", pid, exc)
        finally:
            self._connections.discard(task)
            if answers is not None:
                answers.close()
            writer.close()
            if pid is not None and pid in self._reading:
                self._reading[pid] -= 1
                if not task.cancelling():
                    await self._settle_worker(pid)

    async def _give_up(
        self, pid: int | None, reader: asyncio.StreamReader, requests: dict[str, RequestContext]
    ) -> None:
        """Shutdown time is up before this channel was read to its end: count the records it still owed, and say so.

        The rest of the channel is read (hooks not run) only to count them: the requests started and not
        ended, and those whose events were never read.
        """
        lost, unread = set(requests), 0
        requests.clear()
        try:
            while line := await asyncio.wait_for(reader.readline(), UNREAD_LINE_SECONDS):
                unread += 1
                message = json.loads(line)
                if message.get("t") == "start":
                    lost.add(message["ctx"]["request_id"])
                elif message.get("t") == "end":
                    lost.add(message["rec"]["request_id"])
        except (TimeoutError, OSError, ValueError, KeyError, TypeError, asyncio.LimitOverrunError) as exc:
            if unread or not isinstance(exc, TimeoutError):
                log.debug("worker pid %s: counting its unread events stopped: %r", pid, exc)
        self.records_lost += len(lost)
        log.error(
            "worker pid %s: shutdown time was up before its event channel was read to the end: "
            "%d record(s) lost (%d event(s) left unread, and requests whose records had not reached the plugins)",
            pid,
            len(lost),
            unread,
        )

    async def _handle(
        self, message: dict[str, Any], requests: dict[str, RequestContext], answers: AnswerWriter
    ) -> None:
        kind = message.get("t")
        if kind == "start":
            context = context_from_wire(message["ctx"])
            requests[context.request_id] = context
            await self.hooks.start(context)
        elif kind == "end":
            record = record_from_wire(message["rec"])
            started = requests.get(record.request_id)
            await self._fire_end(started or context_of_record(record), record)
            requests.pop(record.request_id, None)
        elif kind == "admit":
            asking = requests.get(message["id"])
            admissions = [] if asking is None else await self.hooks.admit(asking)
            answers.send(encode({"t": "admitted", "n": message["n"], "answers": admissions_to_wire(admissions)}))
        else:
            self.bad_events += 1
            log.error("unknown event %r on a worker's channel", kind)

    async def _fire_end(self, context: RequestContext, record: AccessRecord) -> None:
        """Start ``on_request_end`` for ``record`` in a task of its own; wait only when too many are pending."""
        if self._end_room.locked():
            self._full_log.log("%d records wait for on_request_end to return; reading waits", PENDING_END_HOOKS)
        await self._end_room.acquire()
        task = asyncio.create_task(self.hooks.end(context, record))
        self._ends.add(task)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._ends.discard(task)
        self._end_room.release()
        if not task.cancelled() and (error := task.exception()) is not None:  # hooks are guarded: a bug of ours
            log.error("on_request_end of a worker's record failed: %r", error)


class AnswerWriter:
    """Admission answers to one worker, in order, on a duplicate of its connection's socket.

    Written through the connection's own transport, a failed write (the worker has left: a
    broken pipe) would close the connection, and with it what the worker wrote before it left
    and the hub has not read yet. Here a failed write ends only the answering.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._socket = socket.socket(fileno=os.dup(writer.get_extra_info("socket").fileno()))
        self._socket.setblocking(False)
        self._queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._task = asyncio.create_task(self._send())

    def send(self, line: bytes) -> None:
        """Queue ``line``; it is written after the answers before it (never waited for)."""
        if not self._task.done():
            self._queue.put_nowait(line)

    def close(self) -> None:
        self._task.cancel()
        self._socket.close()

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            line = await self._queue.get()
            try:
                await loop.sock_sendall(self._socket, line)
            except OSError as exc:  # the worker has gone: it asks no more, and waits for no answer
                log.info("a worker left before its admission answers were written (%r); reading on", exc)
                return


def exited_record(context: RequestContext, exit_code: int | None) -> AccessRecord:
    """The record of a request whose worker exited before ending it."""
    duration = max(0.0, time.perf_counter() - context.started_monotonic)
    return AccessRecord(
        request_id=context.request_id,
        timestamp=context.started_at,
        method=context.method,
        endpoint=context.endpoint,
        path=context.path,
        query=context.query,
        client_ip=context.client_ip,
        user_agent=context.user_agent,
        service_type=context.service_type,
        model=context.model,
        streaming=context.streaming,
        status_code=WORKER_EXITED_STATUS,
        duration_ms=duration * 1000.0,
        duration_seconds=duration,
        tokens_input=None,
        tokens_output=None,
        cache_read_tokens=None,
        cache_write_tokens=None,
        cost_usd=None,
        cost_sdk_usd=None,
        error_type=WORKER_EXITED,
        error_message=f"the worker process serving this request exited (exit code {exit_code}) before it ended",
        session_id=context.session_id,
        end_user=context.end_user,
        project=context.project,
        api_key_id=context.api_key_id,
        api_key_name=context.api_key_name,
        client_name=context.client_name,
        client_version=context.client_version,
        tags=dict(context.tags),
        client_request_id=context.client_request_id,
    )
