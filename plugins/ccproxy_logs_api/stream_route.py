"""GET /logs/stream: Server-Sent Events, one ``record`` event per finished request."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

from .params import param_error, parse_event_id, parse_names, parse_statuses
from .stream import HubFull, StreamEvent, StreamFilter, StreamHub, Subscriber

HUB_ATTRIBUTE = "ccproxy_logs_stream"
DRAIN_CHECK_SECONDS = 0.5
DRAINING_CHECK_SECONDS = 0.05
GAP_REASON = json.dumps(
    {
        "reason": "records since your Last-Event-ID are no longer all in the replay ring "
        "(OBSERVABILITY__STREAM_REPLAY_SIZE, kept for a minute after the last client leaves); "
        "/logs/query has them all"
    }
)
_skip_log = RateLimitedLog(logging.getLogger("ccproxy.logs_api"), level=logging.ERROR)


async def stream_logs(
    request: Request,
    model: str | None = Query(None, description="Comma list of models; !name excludes"),
    service_type: str | None = Query(None, description="Comma list: anthropic, openai; !name excludes"),
    status_class: str | None = Query(None, description="Comma list of status classes: 2xx, 4xx, 5xx"),
    last_event_id_query: str | None = Query(
        None, alias="last_event_id", description="For clients that cannot send the Last-Event-ID header"
    ),
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> EventSourceResponse | JSONResponse:
    """Each finished request as ``event: record``, ``id: <n>``, ``data: <record JSON>``; heartbeat comments."""
    hub: StreamHub | None = getattr(request.app.state, HUB_ATTRIBUTE, None)
    if hub is None:
        return JSONResponse({"detail": "the log stream is not running yet; retry in a moment"}, status_code=503)
    try:
        hub.follow_peers(host_of(request.app).log_store())
    except Exception:  # noqa: BLE001 - a storage plugin's failure: this instance's own records still stream
        _skip_log.log("get_log_store failed; the stream carries this instance's records only", exc_info=True)
    stream_filter = _stream_filter(model, service_type, status_class)
    resume_after = parse_event_id("Last-Event-ID", last_event_id, "header")
    if resume_after is None:  # not `or`: an id of 0 is an id
        resume_after = parse_event_id("last_event_id", last_event_id_query)
    try:
        subscriber, missed = hub.subscribe(stream_filter, resume_after)
    except HubFull:
        return JSONResponse(
            {
                "detail": f"the log stream already has {hub.max_subscribers} subscribers "
                "(OBSERVABILITY__STREAM_MAX_SUBSCRIBERS); retry later or raise that setting"
            },
            status_code=503,
        )
    gap = hub.may_have_missed(resume_after)
    host = host_of(request.app)
    drain = Drain(request.app.state.draining, host.requests_in_flight)
    # The background task also unsubscribes a stream whose body never started (HEAD, early disconnect).
    events = _events(hub, subscriber, missed, hub.last_id, drain, gap)
    # The grace period lets _events carry the records of the requests the server still drains, then end the
    # body cleanly; sse-starlette's default (0) cuts it at the signal, mid-chunk.
    return EventSourceResponse(
        events,
        ping=hub.heartbeat_seconds,
        shutdown_grace_period=host.settings.server.shutdown_timeout_seconds + 2 * DRAIN_CHECK_SECONDS,
        background=BackgroundTask(hub.unsubscribe, subscriber),
    )


def _stream_filter(model: str | None, service_type: str | None, status_class: str | None) -> StreamFilter:
    codes, classes = parse_statuses("status_class", status_class)
    if codes:
        raise param_error("status_class", "must be a comma list of status classes: 2xx, 3xx, 4xx, 5xx", status_class)
    return StreamFilter(parse_names("model", model), parse_names("service_type", service_type), classes)


@dataclass(frozen=True, slots=True)
class Drain:
    """The server's shutdown as a stream sees it: whether it began, and how many requests it still waits for."""

    began: threading.Event
    requests_in_flight: Callable[[], int]

    def over(self) -> bool:
        """The server drains and no request is left whose record could still come."""
        return self.began.is_set() and self.requests_in_flight() == 0


async def _events(
    hub: StreamHub, subscriber: Subscriber, missed: list[StreamEvent], position: int, drain: Drain, gap: bool
) -> AsyncIterator[ServerSentEvent]:
    try:
        if gap:
            yield ServerSentEvent(event="gap", data=GAP_REASON)
        for missed_event in missed:
            if (sse := _record_event(hub, missed_event)) is not None:
                yield sse
        # An id with no data sets the client's last event id without an event: a client that loses
        # the connection before its first record then reconnects from here, and misses nothing.
        yield ServerSentEvent(id=str(position))
        while True:
            event = await _next_event(subscriber, drain)
            if subscriber.dropped:
                yield ServerSentEvent(
                    event="dropped",
                    data=json.dumps(
                        {
                            "reason": f"this client fell {hub.queue_size} events behind "
                            "(OBSERVABILITY__STREAM_QUEUE_SIZE); reconnect with Last-Event-ID"
                        }
                    ),
                )
                return
            if event is None or subscriber.closed:
                return
            if (sse := _record_event(hub, event)) is not None:
                yield sse
    finally:
        hub.unsubscribe(subscriber)


async def _next_event(subscriber: Subscriber, drain: Drain) -> StreamEvent | None:
    """The next event, or None once the drain is over: an open stream must not hold up shutdown, nor end
    before the records of the requests the server finishes first (a client reconnecting to the next
    process could not get them back)."""
    over_at_last_check = False
    while True:
        # Once the server drains, checked often: the requests cut at its timeout's last second are recorded
        # then, and the stream must carry them and end before the timeout cuts it too.
        check = DRAINING_CHECK_SECONDS if drain.began.is_set() else DRAIN_CHECK_SECONDS
        try:
            return await asyncio.wait_for(subscriber.queue.get(), check)
        except TimeoutError:
            # Over at two checks in a row: a record whose hooks were still running at the first is out by the second.
            over = drain.over()
            if over and over_at_last_check:
                return None
            over_at_last_check = over


def _record_event(hub: StreamHub, event: StreamEvent) -> ServerSentEvent | None:
    """The event to send, or ``None`` for a record that cannot be encoded: skipped, counted, logged, never fatal."""
    try:
        return ServerSentEvent(data=event.data, event="record", id=str(event.id))
    except Exception:  # noqa: BLE001 - one bad record must not end every subscriber's stream
        hub.skipped_records += 1  # counted once per subscriber that met it
        _skip_log.log("the log stream skipped access record %s", event.record.request_id, exc_info=True)
        return None
