"""The batching writer every store shares: batches, drops counted and logged, retries, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from typing import Any

from ccproxy_core.plugin_host.batch_writer import BatchWriter
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog
from ccproxy_core.testing import wait_until
from tests.duckdb_records import numbered_record as make_record

log = logging.getLogger("test.batch_writer")


class ListStore(BatchWriter):
    """A store in a list; ``failing`` makes every write fail until it is cleared."""

    store_name = "ListStore"
    first_retry_seconds = 0.01
    max_retry_seconds = 0.05

    def __init__(
        self, queue_size: int = 100, batch_size: int = 10, grace: float = 0.0, flush_interval: float = 0.02
    ) -> None:
        super().__init__(log, queue_size, batch_size, flush_interval=flush_interval)
        self.shutdown_grace_seconds = grace
        self.stored: list[str] = []
        self.batches: list[int] = []
        self.failing = threading.Event()
        self.disconnected = False

    def to_row(self, record: Any) -> tuple[Any, ...]:
        if record.model == "unconvertible":
            raise ValueError("no row for this one")
        return (record.request_id,)

    def write_pending(self) -> bool:
        if self.failing.is_set():
            self.write_errors += 1
            return False
        self.stored += [row[0] for row in self._pending]
        self.batches.append(len(self._pending))
        self.note_written(len(self._pending))
        self._pending = []
        return True

    def disconnect(self) -> None:
        self.disconnected = True


def records(count: int, start: int = 0) -> list:
    return [replace(make_record(1), request_id=f"r{n}") for n in range(start, start + count)]


def test_records_are_written_in_batches_in_order_and_counted():
    store = ListStore(batch_size=10)
    store.start()
    for record in records(35):
        store.submit(record)
    store.close()
    assert store.stored == [f"r{n}" for n in range(35)]
    assert max(store.batches) <= 10 and sum(store.batches) == 35
    assert store.stats()["rows_written"] == 35 and store.stats()["dropped_records"] == 0 and store.disconnected


def test_full_batches_are_written_at_once_while_more_records_wait():
    store = ListStore(batch_size=10, flush_interval=60)
    for record in records(25):
        store.submit(record)
    store.start()
    try:
        # Two full batches go without waiting; the last five wait for the flush interval.
        wait_until(lambda: store.stats()["rows_written"] == 20, timeout=5)
        assert store.batches == [10, 10] and store.stats()["queue_depth"] == 5
    finally:
        store.close()
    assert store.stored == [f"r{n}" for n in range(25)]


def test_a_record_arriving_while_the_writer_waits_wakes_it():
    store = ListStore(batch_size=1, flush_interval=60)
    store.start()
    try:
        for n, record in enumerate(records(3)):
            store.submit(record)
            wait_until(lambda n=n: store.stats()["rows_written"] == n + 1, timeout=5)
    finally:
        store.close()
    assert store.stored == ["r0", "r1", "r2"]


def test_a_full_queue_drops_the_newest_counts_and_logs_once(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    store = ListStore(queue_size=5)  # not started: nothing drains the queue
    for record in records(8):
        store.submit(record)
    assert store.stats()["dropped_records"] == 3 and store.stats()["queue_depth"] == 5
    lines = [r.getMessage() for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(lines) == 1 and "r5" in lines[0]
    store.start()
    store.close()
    assert store.stored == [f"r{n}" for n in range(5)]


def test_a_record_without_a_row_is_dropped_alone(caplog):
    store = ListStore()
    store.start()
    for record in [*records(2), replace(make_record(1), request_id="bad", model="unconvertible"), *records(2, 2)]:
        store.submit(record)
    store.close()
    assert store.stored == ["r0", "r1", "r2", "r3"] and store.stats()["dropped_records"] == 1
    assert any("bad" in r.getMessage() and "ListStore" in r.getMessage() for r in caplog.records)


def test_a_failing_store_keeps_the_batch_and_retries_until_it_works():
    store = ListStore()
    store.failing.set()
    store.start()
    for record in records(12):
        store.submit(record)
    wait_until(lambda: store.write_errors >= 3)
    assert store.stored == [] and store.stats()["queue_depth"] == 12
    store.failing.clear()
    store.close()
    assert store.stored == [f"r{n}" for n in range(12)] and store.stats()["dropped_records"] == 0


def test_shutdown_while_failing_drops_everything_left_after_the_grace(caplog):
    store = ListStore(grace=0.1)
    store.failing.set()
    store.start()
    for record in records(25):
        store.submit(record)
    wait_until(lambda: store.write_errors >= 1)
    store.close()
    assert store.stored == [] and store.stats()["dropped_records"] == 25 and store.stats()["queue_depth"] == 0
    assert any("dropped 25 access record(s)" in r.getMessage() for r in caplog.records)


class HangingStore(ListStore):
    """A store whose writes hang until they are interrupted, as an insert to a frozen server does."""

    def __init__(self, grace: float) -> None:
        super().__init__(grace=grace)
        self.cut = threading.Event()
        self.seconds_left_seen: list[float | None] = []

    def write_pending(self) -> bool:
        self.seconds_left_seen.append(self.seconds_left_to_stop())
        if self.seconds_left_seen[-1] is None:
            self.cut.wait()  # the write under way when the shutdown begins: it never ends by itself
        self.write_errors += 1
        return False

    def interrupt(self) -> None:
        self.cut.set()


def hanging_with(count: int, grace: float) -> HangingStore:
    """A started store whose write of ``count`` records hangs, once that write is under way."""
    store = HangingStore(grace=grace)
    store.start()
    for record in records(count):
        store.submit(record)
    wait_until(lambda: store.seconds_left_seen)
    return store


def test_a_write_hanging_past_the_shutdown_grace_is_cut_and_the_rest_dropped(caplog):
    store = hanging_with(5, grace=0.3)
    began = time.monotonic()
    store.close()
    # Before, the grace began at the first failure after the signal, and a hanging write held the exit for as long
    # as its server took to answer.
    assert time.monotonic() - began < 3
    assert not store._thread.is_alive() and store.stats()["dropped_records"] == 5
    assert all(left is not None and left <= 0.3 for left in store.seconds_left_seen[1:])  # retries know the time left


def test_rate_limited_log_says_how_many_were_held_back(caplog):
    caplog.set_level(logging.ERROR, logger=log.name)
    limited = RateLimitedLog(log, interval_seconds=3600, level=logging.ERROR)
    for n in range(5):
        limited.log("dropped %d", n)
    assert [r.getMessage() for r in caplog.records] == ["dropped 0"]
    limited._next_at = 0.0
    limited.log("dropped %d", 9)
    assert caplog.records[-1].getMessage() == "dropped 9 (4 more like this since the last such line were not logged)"


def test_a_close_within_less_than_the_grace_gives_up_in_time_and_counts_the_drops_before_returning():
    store = ListStore(grace=30.0)
    store.failing.set()
    store.start()
    for record in records(5):
        store.submit(record)
    wait_until(lambda: store.write_errors >= 1)
    began = time.monotonic()
    store.close(within=2.0)
    # Before: 30 s of retries, long after the caller (a plugin's share of the shutdown) had moved on.
    assert time.monotonic() - began < 2.0
    assert store.stats()["dropped_records"] == 5 and not store._thread.is_alive()


def test_a_hanging_write_is_cut_within_a_share_shorter_than_the_interrupt_delay():
    store = hanging_with(3, grace=30.0)
    began = time.monotonic()
    store.close(within=0.6)
    # Before: the hanging write was cut only after a full second, past the caller's share of the shutdown.
    assert time.monotonic() - began < 0.6
    assert store.stats()["dropped_records"] == 3


def test_drops_held_back_from_the_log_are_told_once_the_interval_passes_without_a_new_drop(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    store = ListStore(queue_size=5)
    store._full_log.interval = 0.1
    for record in records(8):
        store.submit(record)
    time.sleep(0.15)
    store.start()
    wait_until(lambda: any("was full" in r.getMessage() for r in caplog.records))
    store.close()
    # Before: one line, "1 dropped so far", and never the other two.
    [told] = [r.getMessage() for r in caplog.records if "was full" in r.getMessage()]
    assert "3 record(s) dropped so far" in told and "(2 of them not logged one by one)" in told


def test_drops_held_back_are_told_as_the_writer_stops_though_the_interval_has_not_passed(caplog):
    caplog.set_level(logging.WARNING, logger=log.name)
    store = ListStore(queue_size=2)
    for record in records(50):
        store.submit(record)
    store.start()
    store.close()
    # Before: only "1 dropped so far"; the other 47 drops were never told.
    [told] = [r.getMessage() for r in caplog.records if "was full" in r.getMessage()]
    assert "48 record(s) dropped so far" in told and "(47 of them not logged one by one)" in told
