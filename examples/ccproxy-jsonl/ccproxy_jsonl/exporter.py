"""The per-app exporter: takes records on the event loop, writes them from a thread of its own.

The plugin's ``on_request_end`` runs on the proxy's hot path, so :meth:`JsonlExporter.submit`
only puts ``record.to_dict()`` on a bounded queue. A background thread turns queued records into JSON lines, appends them
to the rotating file and flushes after each batch, so a shipper tailing the file sees a
record moments after its request ended.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

from ccproxy_core import AccessRecord

from .rotating_file import RotatingFile
from .settings import JsonlSettings

log = logging.getLogger("ccproxy.jsonl")

_STOP = object()
BATCH_SIZE = 500
"""Most records written between two flushes."""


class JsonlExporter:
    """One app's exporter, kept in ``ccproxy.state("jsonl")`` while the server runs."""

    def __init__(self, settings: JsonlSettings) -> None:
        self.settings = settings
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=settings.queue_size)
        # Opened here, on start-up, so a bad path stops the server instead of failing later.
        self._file = RotatingFile(settings.path, settings.max_bytes, settings.backups)
        self._thread = threading.Thread(target=self._run, name="ccproxy-jsonl-writer", daemon=True)
        self.dropped = 0
        self.written = 0
        self.write_errors = 0

    def submit(self, record: AccessRecord) -> None:
        """Queue the record; if the writer has fallen too far behind, drop it and count it."""
        try:
            self._queue.put_nowait(record.to_dict())
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "jsonl: %d records dropped, the writer is behind (PLUGINS__JSONL__QUEUE_SIZE)", self.dropped
                )

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, close the file and end the thread. Blocks: call it from a thread."""
        self._queue.put(_STOP, timeout=timeout)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("jsonl: the writer did not finish within %.0f s; unwritten records are lost", timeout)
            return
        log.info(
            "jsonl: wrote %d records to %s (%d dropped, %d write errors)",
            self.written,
            self.settings.path,
            self.dropped,
            self.write_errors,
        )

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            stopping = batch[-1] is _STOP
            self._write([item for item in batch if item is not _STOP])
            if stopping:
                self._file.close()
                return

    def _next_batch(self) -> list[Any]:
        batch = [self._queue.get()]
        while batch[-1] is not _STOP and len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, records: list[dict[str, Any]]) -> None:
        try:
            for record in records:
                self._file.write_line(_json_line(record))
                self.written += 1
            self._file.flush()
        except (OSError, ValueError) as exc:  # a full disk must not kill the writer; later batches may succeed
            self.write_errors += 1
            log.error("jsonl: cannot write to %s: %s", self.settings.path, exc)


def _json_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n").encode()
