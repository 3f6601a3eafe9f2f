"""The live feed behind GET /logs/stream: one event per finished request, fanned out to subscribers.

Fed by this plugin's own ``on_request_end`` observer, not by the database, so it works with
collection off. Memory is bounded everywhere: each subscriber has a queue of
``stream_queue_size`` events and is dropped (not waited for) when it falls that far behind;
at most ``stream_max_subscribers`` at once; the last ``stream_replay_size`` events are kept for
clients that reconnect with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.log_store import NameFilter

HEARTBEAT_SECONDS = 15.0
REPLAY_GRACE_SECONDS = 60.0
"""How long after start-up, and after its last subscriber left, the hub keeps filling its replay
ring. A client that reconnects within it (``EventSource`` retries within seconds, also across a
restart) gets what it missed; a stream nobody follows keeps no records in memory. Holding the
last thousand cost a busy proxy 1.3 to 2.5% of its CPU per request, two proxies measured side by
side on one core, one with ``OBSERVABILITY__STREAM_REPLAY_SIZE=0`` (docs/benchmarks.md)."""


class StreamEvent:
    """One finished request, numbered; its JSON is built once, when the first subscriber needs it."""

    __slots__ = ("id", "record", "_data")

    def __init__(self, event_id: int, record: AccessRecord) -> None:
        self.id = event_id
        self.record = record
        self._data: str | None = None

    @property
    def data(self) -> str:
        """``record.to_dict()`` as compact, strict JSON (``ValueError`` for a value JSON cannot carry, such as NaN)."""
        if self._data is None:
            self._data = json.dumps(self.record.to_dict(), separators=(",", ":"), default=str, allow_nan=False)
        return self._data


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which records one subscriber wants."""

    model: NameFilter = field(default_factory=NameFilter)
    service_type: NameFilter = field(default_factory=NameFilter)
    status_classes: tuple[int, ...] = ()

    def matches(self, record: AccessRecord) -> bool:
        """True when ``record`` passes every given part of the filter."""
        return (
            _name_matches(self.model, record.model)
            and _name_matches(self.service_type, record.service_type)
            and (not self.status_classes or record.status_code // 100 in self.status_classes)
        )


def _name_matches(name_filter: NameFilter, value: str | None) -> bool:
    if name_filter.include and value not in name_filter.include:
        return False
    return value is None or value not in name_filter.exclude


class Subscriber:
    """One connected /logs/stream client."""

    def __init__(self, stream_filter: StreamFilter, queue_size: int) -> None:
        self.filter = stream_filter
        self.queue: asyncio.Queue[StreamEvent | None] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False
        self.closed = False


class HubFull(Exception):
    """No room for another subscriber (OBSERVABILITY__STREAM_MAX_SUBSCRIBERS)."""


class StreamHub:
    """Numbers each finished request, keeps the replay ring, and hands events to subscribers."""

    def __init__(
        self,
        max_subscribers: int,
        queue_size: int,
        replay_size: int,
        replay_grace_seconds: float = REPLAY_GRACE_SECONDS,
    ) -> None:
        self.max_subscribers = max_subscribers
        self.queue_size = queue_size
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        """Seconds between heartbeat comments; tests may lower it on a running app."""
        self.replay_grace_seconds = replay_grace_seconds
        """Seconds the replay ring keeps filling with no subscriber (:data:`REPLAY_GRACE_SECONDS`)."""
        self.dropped_subscribers = 0
        self.skipped_records = 0
        """Records that could not be encoded for the stream and were left out (each logged)."""
        self._subscribers: set[Subscriber] = set()
        self._ring: deque[StreamEvent] = deque(maxlen=replay_size)
        self._replaying_until = time.monotonic() + self.replay_grace_seconds  # for clients of the last run
        # Ids start at the current time in microseconds, so they keep increasing across restarts
        # and a Last-Event-ID from before a restart never hides the new run's events.
        self._last_id = time.time_ns() // 1000
        self._first_id = self._complete_after = self._last_id
        """The ring holds every event of this run after ``_complete_after`` (none was lost before it if equal)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._peers_followed = False

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Remember the event loop that owns the subscriber queues."""
        self._loop, self._loop_thread = loop, threading.get_ident()

    @property
    def last_id(self) -> int:
        """The id of the newest event (or the starting point, before any)."""
        return self._last_id

    @property
    def subscriber_count(self) -> int:
        """Subscribers connected now."""
        return len(self._subscribers)

    def publish(self, record: AccessRecord) -> None:
        """Number ``record``, keep it for replay, queue it for each interested subscriber. Never blocks."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.publish, record)
            return
        self._last_id += 1
        event = StreamEvent(self._last_id, record)
        if self._ring.maxlen:
            self._keep_for_replay(event)
        else:
            self._complete_after = event.id
        for subscriber in list(self._subscribers):
            if subscriber.filter.matches(record):
                try:
                    subscriber.queue.put_nowait(event)
                except asyncio.QueueFull:
                    self._drop(subscriber)

    def _keep_for_replay(self, event: StreamEvent) -> None:
        if self._subscribers or time.monotonic() < self._replaying_until:
            if len(self._ring) == self._ring.maxlen:
                self._complete_after = self._ring[0].id  # the oldest leaves the ring
            self._ring.append(event)
        else:
            self._ring.clear()  # nobody can resume from it any more
            self._complete_after = event.id

    def may_have_missed(self, last_event_id: int | None) -> bool:
        """Whether events of this run after ``last_event_id`` are no longer in the ring to replay (it was
        full, or kept nothing while nobody followed); ids from before this run are the last run's to send."""
        if last_event_id is None:
            return False
        if last_event_id > self._last_id:  # an id from the future: the clock went back
            last_event_id = 0
        return max(last_event_id, self._first_id) < self._complete_after

    def follow_peers(self, store: object) -> None:
        """Once: when ``store`` also holds other instances' records (a shared database), publish those too.

        A store offers them with ``follow_peer_records(publish)`` (see :mod:`ccproxy_core.plugin_host.log_store`).
        """
        follow = getattr(store, "follow_peer_records", None)
        if self._peers_followed or not callable(follow):
            return
        follow(self.publish)
        self._peers_followed = True

    def subscribe(self, stream_filter: StreamFilter, last_event_id: int | None) -> tuple[Subscriber, list[StreamEvent]]:
        """A new subscriber and the events it missed since ``last_event_id``; raises :class:`HubFull`."""
        if len(self._subscribers) >= self.max_subscribers:
            raise HubFull
        subscriber = Subscriber(stream_filter, self.queue_size)
        self._subscribers.add(subscriber)
        return subscriber, self._missed(stream_filter, last_event_id)

    def _missed(self, stream_filter: StreamFilter, last_event_id: int | None) -> list[StreamEvent]:
        if last_event_id is None:
            return []
        if last_event_id > self._last_id:  # an id from the future: the clock went back; replay what we have
            last_event_id = 0
        return [event for event in self._ring if event.id > last_event_id and stream_filter.matches(event.record)]

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (its connection ended); it may come back with ``Last-Event-ID``."""
        if subscriber in self._subscribers:
            self._left(subscriber)

    def close(self) -> None:
        """End every subscriber's stream (server shutdown)."""
        for subscriber in list(self._subscribers):
            subscriber.closed = True
            self._wake(subscriber)
        self._subscribers.clear()

    def _drop(self, subscriber: Subscriber) -> None:
        subscriber.dropped = True
        self._left(subscriber)
        self.dropped_subscribers += 1

    def _left(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)
        self._replaying_until = time.monotonic() + self.replay_grace_seconds

    @staticmethod
    def _wake(subscriber: Subscriber) -> None:
        try:
            subscriber.queue.put_nowait(None)
        except asyncio.QueueFull:
            pass  # its queue is full, so its reader is not waiting
