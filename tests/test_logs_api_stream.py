"""GET /logs/stream: the hub's rules on their own, then real SSE clients against a real server."""

from __future__ import annotations

import asyncio
import json
import threading

import anthropic
import httpx
import openai
import pytest

from ccproxy_core.plugin_host.log_store import NameFilter
from ccproxy_core.testing import wait_until
from ccproxy_logs_api.stream import HubFull, StreamFilter, StreamHub
from tests.duckdb_records import numbered_record

LOGS_ON = {"logs_endpoints_enabled": True}


# --- the hub -------------------------------------------------------------------


async def test_hub_queues_only_matching_events_in_order():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=10)
    hub.bind_loop(asyncio.get_running_loop())
    everything, _ = hub.subscribe(StreamFilter(), None)
    gpt_errors, _ = hub.subscribe(StreamFilter(model=NameFilter(include=("gpt-4o",)), status_classes=(4, 5)), None)
    hub.publish(numbered_record(1))
    hub.publish(numbered_record(2, model="gpt-4o", status_code=429))
    hub.publish(numbered_record(3, model="gpt-4o"))
    got = [everything.queue.get_nowait() for _ in range(3)]
    assert [event.record.request_id for event in got] == ["req-0001", "req-0002", "req-0003"]
    assert got[0].id < got[1].id < got[2].id
    assert gpt_errors.queue.qsize() == 1 and gpt_errors.queue.get_nowait().record.request_id == "req-0002"
    assert json.loads(got[1].data) == numbered_record(2, model="gpt-4o", status_code=429).to_dict()


async def test_a_subscriber_that_falls_behind_is_dropped_not_waited_for():
    hub = StreamHub(max_subscribers=5, queue_size=2, replay_size=0)
    hub.bind_loop(asyncio.get_running_loop())
    slow, _ = hub.subscribe(StreamFilter(), None)
    reading, _ = hub.subscribe(StreamFilter(), None)
    for n in range(2):
        hub.publish(numbered_record(n))
    reading.queue.get_nowait()
    reading.queue.get_nowait()
    hub.publish(numbered_record(2))
    assert slow.dropped and not reading.dropped
    assert hub.subscriber_count == 1 and hub.dropped_subscribers == 1


async def test_replay_gives_what_was_missed_within_the_ring():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=3)
    hub.bind_loop(asyncio.get_running_loop())
    first, _ = hub.subscribe(StreamFilter(), None)
    for n in range(5):
        hub.publish(numbered_record(n, model="gpt-4o" if n == 4 else "claude"))
    ids = [first.queue.get_nowait().id for _ in range(5)]
    _, missed = hub.subscribe(StreamFilter(), ids[1])
    assert [event.id for event in missed] == ids[2:]
    _, missed = hub.subscribe(StreamFilter(model=NameFilter(exclude=("gpt-4o",))), ids[0])
    assert [event.id for event in missed] == ids[2:4]  # the ring holds the last 3; the filter still applies
    _, missed = hub.subscribe(StreamFilter(), ids[-1] + 10**9)  # an id from a clock that went back
    assert [event.id for event in missed] == ids[2:]


async def test_a_client_is_told_when_the_ring_no_longer_holds_all_it_missed():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=3, replay_grace_seconds=0)
    hub.bind_loop(asyncio.get_running_loop())
    start = hub.last_id
    assert not hub.may_have_missed(start - 5)  # an id of the run before: that run sent its records
    follower, _ = hub.subscribe(StreamFilter(), None)
    for n in range(3):
        hub.publish(numbered_record(n))
    assert not hub.may_have_missed(start)  # the ring still holds all three
    hub.publish(numbered_record(3))  # the first leaves the ring
    assert hub.may_have_missed(start) and not hub.may_have_missed(start + 1)
    hub.unsubscribe(follower)
    hub.publish(numbered_record(4))  # nobody follows: the ring keeps nothing
    assert hub.may_have_missed(start + 3) and not hub.may_have_missed(start + 5)


async def test_the_ring_fills_only_while_someone_follows_the_stream_or_may_come_back():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=5, replay_grace_seconds=0)
    hub.bind_loop(asyncio.get_running_loop())
    hub.publish(numbered_record(0))  # nobody follows: kept for no one
    first, missed = hub.subscribe(StreamFilter(), 0)
    assert missed == []
    for n in (1, 2):
        hub.publish(numbered_record(n))
    ids = [first.queue.get_nowait().id for _ in range(2)]
    hub.unsubscribe(first)
    _, missed = hub.subscribe(StreamFilter(), ids[0])  # a subscriber followed: its events wait for a reconnect
    assert [event.id for event in missed] == ids[1:]


async def test_with_no_subscriber_the_ring_keeps_filling_for_the_grace_then_empties():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=5, replay_grace_seconds=3600)
    hub.bind_loop(asyncio.get_running_loop())
    subscriber, _ = hub.subscribe(StreamFilter(), None)
    hub.unsubscribe(subscriber)
    hub.publish(numbered_record(1))  # within the grace after the last subscriber left
    before = hub.subscribe(StreamFilter(), 0)[1]
    assert [event.record.request_id for event in before] == ["req-0001"]
    hub.close()
    hub.replay_grace_seconds = 0
    hub.unsubscribe(hub.subscribe(StreamFilter(), None)[0])  # the grace ends at once
    hub.publish(numbered_record(2))
    assert hub.subscribe(StreamFilter(), 0)[1] == []  # nothing kept, and nothing stale either


async def test_a_new_hub_keeps_its_ring_for_clients_of_the_last_run():
    hub = StreamHub(max_subscribers=5, queue_size=10, replay_size=5)  # the default grace
    hub.bind_loop(asyncio.get_running_loop())
    hub.publish(numbered_record(1))
    from_the_last_run = 1  # any id below this run's
    assert [event.record.request_id for event in hub.subscribe(StreamFilter(), from_the_last_run)[1]] == ["req-0001"]


async def test_max_subscribers():
    hub = StreamHub(max_subscribers=1, queue_size=10, replay_size=0)
    subscriber, _ = hub.subscribe(StreamFilter(), None)
    with pytest.raises(HubFull):
        hub.subscribe(StreamFilter(), None)
    hub.unsubscribe(subscriber)
    hub.subscribe(StreamFilter(), None)


async def test_publish_from_another_thread_is_handed_to_the_loop():
    hub = StreamHub(max_subscribers=1, queue_size=10, replay_size=0)
    hub.bind_loop(asyncio.get_running_loop())
    subscriber, _ = hub.subscribe(StreamFilter(), None)
    await asyncio.to_thread(hub.publish, numbered_record(1))
    event = await asyncio.wait_for(subscriber.queue.get(), 5)
    assert event.record.request_id == "req-0001"


# --- real SSE clients ----------------------------------------------------------


class SseReader:
    """Reads a /logs/stream response in a thread and parses its events and comments."""

    def __init__(
        self, url: str, params: dict | None = None, headers: dict | None = None, stop_after: int | None = None
    ):
        self.events: list[dict] = []
        self.positions: list[str] = []
        """Ids sent without an event (where the stream stands when a client connects)."""
        self.comments: list[str] = []
        self.status: int | None = None
        self.body = b""
        self._stop = threading.Event()
        self._stop_after = stop_after
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, params, headers), daemon=True)
        self._thread.start()
        assert self._connected.wait(10), "the stream did not answer"

    def _read(self, url, params, headers) -> None:
        try:
            with httpx.stream("GET", url, params=params, headers=headers, timeout=30) as response:
                self.status = response.status_code
                self._connected.set()
                if response.status_code != 200:
                    self.body = response.read()
                    return
                self._parse(response.iter_lines())
        finally:
            self._connected.set()

    def _parse(self, lines) -> None:
        event: dict = {}
        for line in lines:
            if line.startswith(":"):
                self.comments.append(line)
            elif line:
                field, _, value = line.partition(": ")
                event[field] = value
            elif event:
                if list(event) == ["id"]:
                    self.positions.append(event["id"])
                else:
                    self.events.append(event)
                event = {}
            if self._stop.is_set() or (self._stop_after and len(self.events) >= self._stop_after):
                return

    def wait_for_events(self, count: int) -> None:
        wait_until(lambda: len(self.events) >= count)

    def records_before_sentinel(self) -> list[dict]:
        """Wait for the sentinel request; return the records before it (any duplicate would be among them)."""
        wait_until(lambda: any(record["model"] == SENTINEL_MODEL for record in self.records()))
        records = self.records()
        return records[: [record["model"] for record in records].index(SENTINEL_MODEL)]

    def records(self) -> list[dict]:
        return [json.loads(event["data"]) for event in self.events if event.get("event") == "record"]

    def close(self) -> None:
        self._stop.set()  # seen at the next line; heartbeats keep lines coming
        self._thread.join(10)
        assert not self._thread.is_alive()


def stream_hub(proxy):
    return proxy.app.state.ccproxy_logs_stream


def start_stream_proxy(proxy_factory, **observability):
    proxy = proxy_factory(observability={**LOGS_ON, **observability})
    stream_hub(proxy).heartbeat_seconds = 0.1
    return proxy


SENTINEL_MODEL = "zz-sentinel"


def send_sentinel(proxy_url: str) -> None:
    """A last request every stream filter of these tests lets through (openai, 5xx, not gpt-4o)."""
    gpt = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="test-key", max_retries=0)
    with pytest.raises(openai.InternalServerError):
        gpt.chat.completions.create(
            model=SENTINEL_MODEL, messages=[{"role": "user", "content": "end"}], extra_headers={"x-mock-status": "500"}
        )


def send_mixed_traffic(proxy_url: str) -> list[str]:
    """Five requests through the SDKs; returns the models asked for, in order."""
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="test-key", max_retries=0)
    gpt = openai.OpenAI(base_url=f"{proxy_url}/v1", api_key="test-key", max_retries=0)
    message = [{"role": "user", "content": "hello there"}]
    claude.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=message)
    with claude.messages.stream(model="claude-opus-4-1", max_tokens=16, messages=message) as stream:
        stream.get_final_message()
    gpt.chat.completions.create(model="gpt-4o", messages=message)
    list(gpt.chat.completions.create(model="gpt-4o-mini", messages=message, stream=True))
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=16, messages=message, extra_headers={"x-mock-status": "429"}
        )
    return ["claude-haiku-4-5", "claude-opus-4-1", "gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"]


def test_each_request_reaches_every_subscriber_once_with_collection_off(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability=LOGS_ON)
    stream_hub(proxy).heartbeat_seconds = 0.1
    readers = [SseReader(f"{proxy.url}/logs/stream") for _ in range(2)]
    wait_until(lambda: stream_hub(proxy).subscriber_count == 2)
    models = send_mixed_traffic(proxy.url)
    sent = {record.request_id: record for record in recorder.wait_for_ends(5)}
    send_sentinel(proxy.url)
    for reader in readers:
        records = reader.records_before_sentinel()
        reader.close()
        assert [record["request_id"] for record in records] == list(sent)  # once each, in finishing order
        assert sorted(record["model"] for record in records) == sorted(models)
        assert all(record == sent[record["request_id"]].to_dict() for record in records)
        ids = [int(event["id"]) for event in reader.events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) == 6
    assert httpx.get(f"{proxy.url}/logs/query").status_code == 503  # nothing is stored, yet the stream works


def test_stream_filters(proxy_factory):
    proxy = start_stream_proxy(proxy_factory)
    errors_only = SseReader(f"{proxy.url}/logs/stream", params={"status_class": "4xx,5xx"})
    openai_only = SseReader(f"{proxy.url}/logs/stream", params={"service_type": "openai", "model": "!gpt-4o"})
    wait_until(lambda: stream_hub(proxy).subscriber_count == 2)
    send_mixed_traffic(proxy.url)
    send_sentinel(proxy.url)
    errors = errors_only.records_before_sentinel()
    others = openai_only.records_before_sentinel()
    errors_only.close()
    openai_only.close()
    assert [(r["status_code"], r["error_type"]) for r in errors] == [(429, "rate_limit_error")]
    assert [r["model"] for r in others] == ["gpt-4o-mini"]


def test_last_event_id_replays_what_was_missed(proxy_factory):
    proxy = start_stream_proxy(proxy_factory)
    first = SseReader(f"{proxy.url}/logs/stream", stop_after=2)
    wait_until(lambda: stream_hub(proxy).subscriber_count == 1)
    send_mixed_traffic(proxy.url)
    first.wait_for_events(2)
    first.close()
    wait_until(lambda: stream_hub(proxy).subscriber_count == 0)
    last_seen = first.events[1]["id"]
    resumed = SseReader(f"{proxy.url}/logs/stream", headers={"Last-Event-ID": last_seen}, stop_after=3)
    resumed.wait_for_events(3)
    resumed.close()
    assert [int(e["id"]) for e in resumed.events] == [int(last_seen) + n for n in (1, 2, 3)]
    by_query = SseReader(f"{proxy.url}/logs/stream", params={"last_event_id": last_seen}, stop_after=3)
    by_query.wait_for_events(3)
    by_query.close()
    assert by_query.records() == resumed.records()


def test_an_event_id_of_zero_in_the_header_replays_what_the_ring_holds_as_in_the_query(proxy_factory):
    proxy = start_stream_proxy(proxy_factory)
    models = send_mixed_traffic(proxy.url)  # five records before anyone follows
    # Before, "0" in the header read as no id at all: nothing replayed, the client told it missed nothing.
    followers = [
        SseReader(f"{proxy.url}/logs/stream", headers={"Last-Event-ID": "0"}, stop_after=5),
        SseReader(f"{proxy.url}/logs/stream", params={"last_event_id": "0"}, stop_after=5),
    ]
    for follower in followers:
        follower.wait_for_events(5)
        follower.close()
    by_header, by_query = followers
    assert [record["model"] for record in by_header.records()] == models
    assert [event["event"] for event in by_header.events] == [event["event"] for event in by_query.events]
    assert by_header.records() == by_query.records()


def test_a_client_back_after_the_ring_moved_on_is_told_of_the_gap_before_the_rest(proxy_factory):
    proxy = start_stream_proxy(proxy_factory, stream_replay_size=2)
    first = SseReader(f"{proxy.url}/logs/stream", stop_after=1)
    wait_until(lambda: stream_hub(proxy).subscriber_count == 1)
    models = send_mixed_traffic(proxy.url)  # five records; the ring of two keeps the last two
    first.wait_for_events(1)
    first.close()
    resumed = SseReader(f"{proxy.url}/logs/stream", headers={"Last-Event-ID": first.events[0]["id"]}, stop_after=3)
    resumed.wait_for_events(3)
    resumed.close()
    gap = resumed.events[0]
    assert gap["event"] == "gap" and "id" not in gap and "/logs/query" in json.loads(gap["data"])["reason"]
    assert [record["model"] for record in resumed.records()] == models[-2:]  # what the ring still held


def test_a_client_that_leaves_before_any_event_resumes_from_where_it_joined(proxy_factory):
    proxy = start_stream_proxy(proxy_factory)
    joined = SseReader(f"{proxy.url}/logs/stream")
    wait_until(lambda: joined.positions)
    joined.close()
    wait_until(lambda: stream_hub(proxy).subscriber_count == 0)
    models = send_mixed_traffic(proxy.url)  # finished while no one was connected
    resumed = SseReader(f"{proxy.url}/logs/stream", headers={"Last-Event-ID": joined.positions[0]})
    resumed.wait_for_events(len(models))
    resumed.close()
    assert [record["model"] for record in resumed.records()] == models


def test_heartbeat_comments_keep_an_idle_stream_alive(proxy_factory):
    proxy = start_stream_proxy(proxy_factory)
    reader = SseReader(f"{proxy.url}/logs/stream")
    wait_until(lambda: len(reader.comments) >= 2)
    reader.close()
    assert all(comment.startswith(": ping") for comment in reader.comments) and reader.events == []


def test_subscriber_limit_answers_503_naming_the_setting(proxy_factory):
    proxy = start_stream_proxy(proxy_factory, stream_max_subscribers=1)
    first = SseReader(f"{proxy.url}/logs/stream")
    second = SseReader(f"{proxy.url}/logs/stream")
    first.close()
    second.close()
    assert first.status == 200
    assert second.status == 503 and "OBSERVABILITY__STREAM_MAX_SUBSCRIBERS" in json.loads(second.body)["detail"]


def test_a_client_that_falls_behind_gets_a_dropped_event_and_is_let_go(proxy_factory):
    proxy = start_stream_proxy(proxy_factory, stream_queue_size=2)
    reader = SseReader(f"{proxy.url}/logs/stream")
    hub = stream_hub(proxy)
    wait_until(lambda: hub.subscriber_count == 1)
    burst = [numbered_record(n) for n in range(5)]
    # Five events in one turn of the loop: more than the client's queue holds before it can send any.
    hub._loop.call_soon_threadsafe(lambda: [hub.publish(record) for record in burst])
    wait_until(lambda: any(event.get("event") == "dropped" for event in reader.events))
    reader.close()
    assert hub.dropped_subscribers == 1 and hub.subscriber_count == 0
    assert "OBSERVABILITY__STREAM_QUEUE_SIZE" in reader.events[-1]["data"]


@pytest.mark.parametrize(
    ("params", "headers", "parameter"),
    [
        ({"status_class": "200"}, {}, "status_class"),
        ({"status_class": "9xx"}, {}, "status_class"),
        ({"model": "!"}, {}, "model"),
        ({}, {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        ({"last_event_id": "1; DROP TABLE access_logs"}, {}, "last_event_id"),
    ],
)
def test_bad_stream_parameters_are_422_naming_them(proxy_factory, params, headers, parameter):
    proxy = start_stream_proxy(proxy_factory)
    response = httpx.get(f"{proxy.url}/logs/stream", params=params, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == parameter
