"""What every store's writer shares: a bounded queue filled on the request path, drained in batches by one thread.

Loss policy common to the stores (each store's writer adds its own for write errors):

- Queue full: the NEWEST record (the one being submitted) is dropped, counted and logged.
- A record that cannot be turned into a row is dropped alone, counted and logged.
- A failed write keeps the batch and is retried with a backoff doubling from
  ``first_retry_seconds`` up to ``max_retry_seconds``; meanwhile new records wait in the queue.
- Shutdown while writes still fail: the writer keeps trying for ``shutdown_grace_seconds`` from the
  moment the shutdown began, then drops what is left, counted and logged (the process is exiting). A
  write still hanging then is cut (:meth:`BatchWriter.interrupt`): a store that does not answer must
  not hold the exit past what a service manager waits for.

Drops are logged at most once per 10 s each (:class:`RateLimitedLog`), since a client can cause them at will.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.runtime.rate_limited_logging import RateLimitedLog

COLLECT_STEP_SECONDS = 0.05
"""How often a writer that is gathering a batch looks at its queue: a full batch waits at most this long."""
INTERRUPT_AFTER_SECONDS = 1.0
"""How long past its shutdown grace a writer's write may still run before it is cut."""
STOP_MARGIN_SECONDS = 0.5
"""Kept free at the end of a bounded close (``close(within=...)``): the thread's last steps, the disconnect."""
RESET_WAIT_SECONDS = 10.0
"""How long a reset of the store waits for the records queued before it to be written."""


class BatchWriter:
    """The queue and the writer thread of one store; a store subclasses it and writes the rows."""

    store_name = "the store"
    """How log lines name the store (``DuckDB``, ``ClickHouse``)."""
    first_retry_seconds = 1.0
    max_retry_seconds = 30.0
    shutdown_grace_seconds = 0.0

    def __init__(self, log: logging.Logger, queue_size: int, batch_size: int, flush_interval: float) -> None:
        self._log = log
        # A deque and an event rather than queue.Queue: the request path only appends, and sets
        # the event for the first record of a batch; a Queue's locks and notify cost it some 25 µs.
        self._queue: deque[AccessRecord] = deque()
        self._queue_size = queue_size
        self._arrived = threading.Event()
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._pending: list[tuple[Any, ...]] = []
        self._stopping = threading.Event()
        self._give_up_at = 0.0  # set when the shutdown begins
        self._hurried = 0  # callers waiting for what is queued to be written now, not in a full batch
        self._hurried_lock = threading.Lock()
        self._accepted = 0  # records queued, ever; written only by the submitting (event-loop) thread
        self._thread = threading.Thread(target=self._run, name=f"ccproxy-{self.store_name.lower()}-writer", daemon=True)
        self._dropped_when_full = 0  # written only by the submitting (event-loop) thread
        self._dropped_by_writer = 0  # written only by the writer thread
        self._full_log = RateLimitedLog(log)
        self._refused_log = RateLimitedLog(log, level=logging.ERROR)
        self.write_errors = 0
        self.rows_written = 0
        self.last_flush_at: float | None = None

    # --- what a store provides (writer thread) --------------------------------

    def to_row(self, record: AccessRecord) -> tuple[Any, ...]:
        """The row to insert for ``record``; raising drops this record alone."""
        raise NotImplementedError

    def write_pending(self) -> bool:
        """Insert ``self._pending``; True when it is stored (or reduced to what the store accepts)."""
        raise NotImplementedError

    def disconnect(self) -> None:
        """Close the store's connection as the thread ends."""

    # --- any thread -----------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def submit(self, record: AccessRecord) -> None:
        """Queue one record without blocking; when the queue is full the record is dropped and counted."""
        if len(self._queue) >= self._queue_size:
            self._dropped_when_full += 1
            self._full_log.log(
                "the access-log queue is full (OBSERVABILITY__LOG_QUEUE_SIZE=%d): dropped record %s; %d dropped so far "
                "(raise the setting, or see why %s is slow to write)",
                self._queue_size,
                record.request_id,
                self.dropped_records,
                self.store_name,
            )
            return
        self._queue.append(record)
        self._accepted += 1
        if not self._arrived.is_set():
            self._arrived.set()

    @property
    def dropped_records(self) -> int:
        return self._dropped_when_full + self._dropped_by_writer

    def stats(self) -> dict[str, Any]:
        """Queue depth (queued plus taken for the next insert), losses, errors, rows written, last flush."""
        return {
            "queue_depth": len(self._queue) + len(self._pending),
            "dropped_records": self.dropped_records,
            "write_errors": self.write_errors,
            "rows_written": self.rows_written,
            "last_flush_at": self.last_flush_at,
        }

    def write_queued_now(self, timeout: float) -> bool:
        """Block until every record queued before this call is written (or counted as dropped), the
        writer told not to wait for a full batch; False when ``timeout`` passed first. From a thread."""
        queued_before = self._accepted
        deadline = time.monotonic() + timeout
        with self._hurried_lock:
            self._hurried += 1
        self._arrived.set()
        try:
            while self.rows_written + self._dropped_by_writer < queued_before:
                if time.monotonic() >= deadline or not self._thread.is_alive():
                    self._log.warning(
                        "%d access record(s) asked to be written now are still not in %s after %g s",
                        queued_before - self.rows_written - self._dropped_by_writer,
                        self.store_name,
                        timeout,
                    )
                    return False
                time.sleep(COLLECT_STEP_SECONDS / 10)
        finally:
            with self._hurried_lock:
                self._hurried -= 1
        return True

    def close(self, timeout: float | None = None, within: float | None = None) -> None:
        """Write everything still queued, then stop the thread. Blocking: call it from a thread.

        ``within``: the seconds the caller has to stop in; the writer then gives up (drops and counts what it
        cannot write) early enough to be done by then, if that is before its own ``shutdown_grace_seconds``.
        """
        grace = self.shutdown_grace_seconds
        if within is not None:
            grace = max(0.0, min(grace, within - INTERRUPT_AFTER_SECONDS - STOP_MARGIN_SECONDS))
        self._give_up_at = time.monotonic() + grace
        self._stopping.set()
        self._arrived.set()  # ends the writer's wait for a first record
        if self.shutdown_grace_seconds:
            wait = grace + INTERRUPT_AFTER_SECONDS
            if within is not None:  # a write still hanging is cut in time for the drop to be counted
                wait = min(wait, max(0.0, within - STOP_MARGIN_SECONDS))
            self._thread.join(wait)
            if self._thread.is_alive():
                self.interrupt()
        self._thread.join(timeout)

    def interrupt(self) -> None:
        """Called from another thread when a write still runs past the shutdown grace: make it fail now.
        The default cannot, and waits."""

    def seconds_left_to_stop(self) -> float | None:
        """Once the shutdown has begun, how long the writer may still try; ``None`` before."""
        return max(0.0, self._give_up_at - time.monotonic()) if self._stopping.is_set() else None

    # --- writer thread --------------------------------------------------------

    def note_written(self, count: int) -> None:
        """Count ``count`` rows stored just now."""
        self.rows_written += count
        self.last_flush_at = time.time()

    def drop_refused(self, count: int, reason: str, *args: object) -> None:
        """Count ``count`` rows the store refused for their values, and log why (rate-limited)."""
        self._dropped_by_writer += count
        self._refused_log.log(reason, *args)

    def _run(self) -> None:
        retry_delay = self.first_retry_seconds
        while not (self._stopping.is_set() and not self._pending and not self._queue):
            if self._collect_and_write():
                retry_delay = self.first_retry_seconds
                continue
            if not self._stopping.is_set():
                self._stopping.wait(retry_delay)  # returns early when shutdown begins
            else:
                if time.monotonic() >= self._give_up_at:
                    self._drop_everything(f"the server is stopping and {self.store_name} still cannot be written")
                    continue
                time.sleep(min(retry_delay, max(0.0, self._give_up_at - time.monotonic())))
            retry_delay = min(retry_delay * 2, self.max_retry_seconds)
        self._tell_held_back_drops(now_or_never=True)
        self.disconnect()

    def _tell_held_back_drops(self, now_or_never: bool = False) -> None:
        self._full_log.log_held_back(
            "the access-log queue was full (OBSERVABILITY__LOG_QUEUE_SIZE=%d): %d record(s) dropped so far",
            self._queue_size,
            self._dropped_when_full,
            now_or_never=now_or_never,
        )

    def _collect_and_write(self) -> bool:
        """One round: gather a batch and insert it. False when the insert failed and must be retried."""
        self._tell_held_back_drops()
        try:
            self._collect()
            return not self._pending or self.write_pending()
        except Exception:  # noqa: BLE001 - a bug here must not silently end the writer
            self._log.exception("unexpected error in the %s writer", self.store_name)
            self.write_errors += 1
            return False

    def _collect(self) -> None:
        """Once a batch is full or its first record has waited long enough, move it into the pending batch.

        The thread wakes for the first record, then every :data:`COLLECT_STEP_SECONDS` at most, never
        once per record: a wake-up per record cost the event loop a hand-over of the GIL per request.
        Records become rows all together, when the batch is due: some 15% less of the thread's time
        than a few at each wake-up (``benchmarks/bench_storage.py``).
        """
        retrying = bool(self._pending)
        waiting_for_first = not (retrying or self._queue or self._stopping.is_set())
        if waiting_for_first and not self._arrived.wait(self._flush_interval):
            return
        # Cleared before draining: a record appended after the drain sets it again.
        self._arrived.clear()
        deadline = time.monotonic() + self._flush_interval
        while not (
            retrying
            or self._stopping.is_set()
            or self._hurried
            or len(self._pending) + len(self._queue) >= self._batch_size
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._stopping.wait(min(remaining, COLLECT_STEP_SECONDS))  # returns at once when shutdown begins
        self._drain()

    def _drain(self) -> None:
        while self._queue and len(self._pending) < self._batch_size:
            self._add_pending(self._queue.popleft())

    def _add_pending(self, record: AccessRecord) -> None:
        try:
            self._pending.append(self.to_row(record))
        except Exception:  # noqa: BLE001 - one malformed record must not stop the writer
            self._dropped_by_writer += 1
            self._refused_log.log(
                "dropped access record %s, which could not be turned into a %s row",
                getattr(record, "request_id", "?"),
                self.store_name,
                exc_info=True,
            )

    def _drop_everything(self, reason: str) -> None:
        lost = len(self._pending)
        while self._queue:
            self._queue.popleft()
            lost += 1
        self._pending = []
        self._dropped_by_writer += lost
        self._log.error("dropped %d access record(s): %s", lost, reason)
