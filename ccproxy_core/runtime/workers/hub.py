"""The hub's end of the workers' event channels: every worker's requests reach the plugins here.

For each worker connection the hub reads ``start``, ``admit`` and ``end`` events in order,
keeps each request's context (with its ``state``) from start to end, and fires the request
hooks through the app's own dispatcher, so plugins see every worker's requests as if one
process had served them all. When a worker exits, the requests it had started and not ended
get a record of their own (``ccproxy_worker_exited``), so none vanishes.

``on_request_end`` runs in a task of its own for each record, as it runs in each request's
own task in a single process: a slow or stuck ``async def`` implementation holds up only
that record, never the channel's reading (later requests, their admission, their records).
"""

from __future__ import annotations

import asyncio
import json
import logging
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
_EOF_WAIT_SECONDS = 5.0
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
        self._readers: dict[int, asyncio.Event] = {}
        """Per worker pid, set when its connection has been read to the end."""
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.bad_events = 0
        self._ends: set[asyncio.Task[None]] = set()
        self._end_room = asyncio.Semaphore(PENDING_END_HOOKS)
        self._full_log = RateLimitedLog(log)

    async def start(self) -> None:
        """Listen on the channel socket."""
        self._server = await asyncio.start_unix_server(self._serve, self.socket_path, limit=LINE_LIMIT)

    async def close(self) -> None:
        """Stop listening and close the channels (call once every worker has exited)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
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
        """Read what the worker wrote to the end, then record the requests it left unfinished."""
        done = self._readers.get(pid)
        if done is not None:
            try:
                await asyncio.wait_for(done.wait(), _EOF_WAIT_SECONDS)
            except TimeoutError:
                log.warning("worker pid %d: its channel did not close in %g s after it exited", pid, _EOF_WAIT_SECONDS)
        self._readers.pop(pid, None)
        orphans = self.in_flight.pop(pid, {})
        for context in orphans.values():
            await self._fire_end(context, exited_record(context, exit_code))
        if orphans:
            log.warning(
                "worker pid %d exited with %d request(s) unfinished; recorded as %s", pid, len(orphans), WORKER_EXITED
            )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pid = None
        self._writers.add(writer)
        try:
            hello = json.loads(await reader.readuntil(b"\n"))
            pid = int(hello["pid"])
            self._readers.setdefault(pid, asyncio.Event()).clear()
            requests = self.in_flight.setdefault(pid, {})
            writer.write(
                encode({"t": "welcome", "admit": bool(self._admit_implemented()), "plugins": self._plugin_names})
            )
            while line := await reader.readline():
                await self._handle(json.loads(line), requests, writer)
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
            self._writers.discard(writer)
            writer.close()
            if pid is not None and pid in self._readers:
                self._readers[pid].set()

    async def _handle(
        self, message: dict[str, Any], requests: dict[str, RequestContext], writer: asyncio.StreamWriter
    ) -> None:
        kind = message.get("t")
        if kind == "start":
            context = context_from_wire(message["ctx"])
            requests[context.request_id] = context
            await self.hooks.start(context)
        elif kind == "end":
            record = record_from_wire(message["rec"])
            started = requests.pop(record.request_id, None)
            await self._fire_end(started or context_of_record(record), record)
        elif kind == "admit":
            asking = requests.get(message["id"])
            answers = [] if asking is None else await self.hooks.admit(asking)
            writer.write(encode({"t": "admitted", "n": message["n"], "answers": admissions_to_wire(answers)}))
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
    )
