"""Configure ccproxy's own log output: text or JSON lines, written off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from datetime import UTC, datetime
from typing import TextIO

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.runtime.access_log import access_logger, describe
from ccproxy_core.runtime.library_lines import LibraryWarningsLimited
from ccproxy_core.runtime.settings import LoggingSettings
from ccproxy_core.safe_values import redact_secrets


class JsonFormatter(logging.Formatter):
    """One JSON object per line; an access line carries the whole record."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if access is not None:
            line["access"] = access.to_dict()
        for key in ("plugin", "hook"):
            if hasattr(record, key):
                line[key] = getattr(record, key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message``; an access line is built straight from its record, with no
    ``LogRecord`` (6.8 -> 2 µs a line): the same text, its second's time string made once per second."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._second, self._second_text = -1, ""

    def format_access(self, created: float, record: AccessRecord) -> str:
        """What :meth:`format` writes for the access line of ``record`` logged at ``created``."""
        second = int(created)
        if second != self._second:  # what formatTime writes before the milliseconds
            self._second_text = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        msecs = int((created - second) * 1000)  # formatTime's "%s,%03d" of the LogRecord's float msecs
        return f"{self._second_text},{msecs:03d} INFO {access_logger.name}: {describe(record)}"


class NoKeysInDebugLines(logging.Filter):
    """At DEBUG, libraries print raw headers (the websockets library, for each upgrade): mask the keys in them.
    At any level, a library's line may quote a URL whose query holds a credential (an OpenTelemetry exporter
    naming its endpoint, ``?token=...``): masked too."""

    _HEADER_LINE = re.compile(
        # Spaces and tabs only: ``\s`` would run over line ends, and a message of many short lines
        # would then be scanned again from each of them (seconds for a few thousand lines).
        r"^([<>]?[ \t]*(?:authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|cookie|set-cookie))[ \t]*:.*$",
        re.IGNORECASE | re.MULTILINE,
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in _FRAME_LINES:  # uvicorn hands websockets its own logger: any name
            _without_payload(record)
        if record.levelno <= logging.DEBUG or not record.name.startswith("ccproxy"):
            message = record.getMessage()
            masked = redact_secrets(self._HEADER_LINE.sub(r"\1: ***", message))
            if masked != message:
                record.msg, record.args = masked, None
        return True


_FRAME_LINES = frozenset({"< %s", "> %s"})
"""The websockets library's DEBUG line for each frame it reads or writes (under ``websockets.*`` for the
upstream socket, ``uvicorn.error`` for the client's)."""


def _without_payload(record: logging.LogRecord) -> None:
    """A data frame's line with its kind and size only: its text is a conversation, and may quote a key
    (a provider's error echoing it) in pieces no mask can find. A close frame keeps its code, not its reason."""
    frame = record.args[0] if isinstance(record.args, tuple) and record.args else None
    kind, data = getattr(getattr(frame, "opcode", None), "name", None), getattr(frame, "data", None)
    if kind in ("TEXT", "BINARY", "CONT") and isinstance(data, bytes | bytearray):
        record.args = (f"{kind} [{len(data)} bytes]",)
    elif kind == "CLOSE" and isinstance(data, bytes | bytearray):
        code = f" {int.from_bytes(data[:2], 'big')}" if len(data) >= 2 else ""
        record.args = (f"CLOSE{code} [{len(data)} bytes]",)


class NoQueriesInWebSocketLines(logging.Filter):
    """uvicorn logs each WebSocket upgrade with its path and query (``"WebSocket /v1/realtime?api-key=..."``):
    a key may be in that query (Azure's Realtime API takes one there), so the line keeps the path only."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and '"WebSocket %s"' in record.msg and isinstance(record.args, tuple):
            args = list(record.args)
            if len(args) >= 2 and isinstance(args[1], str) and "?" in args[1]:
                args[1] = args[1].split("?", 1)[0] + "?..."
                record.args = tuple(args)
        return True


class OneLineStartupErrors(logging.Filter):
    """uvicorn prints a traceback when the lifespan fails; ccproxy's own errors need only their message."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        marker = text.rfind("ccproxy_core.errors.")
        if marker != -1 and "Traceback" in text:
            record.msg, record.args = "error: " + text[marker:].split(": ", 1)[-1].strip(), None
        return True


class CutsAreNotCrashes(logging.Filter):
    """A response under way that the shutdown cut (past ``SERVER__SHUTDOWN_TIMEOUT_SECONDS``, or at a
    second Ctrl-C) ends the app with the ``CancelledError`` uvicorn sent it, which uvicorn logs as an
    application crash, with a traceback. A proxied request's record already says ``proxy_cancelled`` (a
    ``/logs/stream`` follower cut the same way has none): one warning line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            message = (
                "a response under way was cut off by the shutdown (a proxied request's record says proxy_cancelled)"
            )
            _one_warning_line(record, message)
        return True


def _one_warning_line(record: logging.LogRecord, message: str) -> None:
    """``record`` as one warning line saying ``message``, without its traceback."""
    record.msg, record.args = message, None
    record.exc_info = record.exc_text = None
    record.levelno, record.levelname = logging.WARNING, "WARNING"


class ClientTextNotUtf8(logging.Filter):
    """uvicorn logs a client's WebSocket text that is not UTF-8 as an application error, with a traceback:
    any client could print one per connection. It is the client's fault, answered with a close (1007)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Invalid UTF-8 sequence received from client"):
            _one_warning_line(record, "a WebSocket client sent text that is not UTF-8: its socket was closed (1007)")
        return True


class LineWriter(threading.Thread):
    """Writes queued log lines to stderr from its own thread: every line waiting goes out in one write.

    The queue holds the records of the root ``QueueHandler`` and the access records that
    :func:`queue_access_line` puts there unformatted: building, formatting and writing their
    lines all happen here, off the event loop.
    """

    def __init__(self, lines: queue.SimpleQueue, formatter: logging.Formatter, stream: TextIO) -> None:
        super().__init__(name="ccproxy-log-lines", daemon=True)
        self._lines, self._formatter, self._stream = lines, formatter, stream
        self._format_access = formatter.format_access if isinstance(formatter, TextFormatter) else None

    def run(self) -> None:
        stopping = False
        while not stopping:
            waiting = [self._lines.get()]
            if waiting[0] is not _STOP:
                time.sleep(LINE_GATHER_SECONDS)  # the lines that come meanwhile share this wake-up and this write
            while len(waiting) < _MOST_LINES_PER_WRITE:
                try:
                    waiting.append(self._lines.get_nowait())
                except queue.Empty:
                    break
            stopping = _STOP in waiting
            self._write([self._format(item) for item in waiting if item is not _STOP])

    def stop(self) -> None:
        """Write every line queued so far, then end the thread (blocking)."""
        self._lines.put(_STOP)
        self.join()

    def _format(self, item: logging.LogRecord | tuple[float, AccessRecord]) -> str:
        if isinstance(item, tuple):
            if self._format_access is not None:
                with contextlib.suppress(Exception):  # what fails here is said as the general path says it
                    return self._format_access(*item)
            item = _access_log_record(*item)
        try:
            return self._formatter.format(item)
        except Exception as exc:  # noqa: BLE001 - one line that cannot be formatted must not end the others
            return f"{item.name}: a log line could not be formatted ({type(exc).__name__})"

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # stderr closed or gone: nothing is left to tell
            pass


def _access_log_record(created: float, record: AccessRecord) -> logging.LogRecord:
    line = logging.LogRecord(access_logger.name, logging.INFO, "", 0, describe(record), None, None)
    line.created, line.msecs = created, (created - int(created)) * 1000
    line.__dict__["access"] = record  # read by JsonFormatter, as the ``extra`` of logging would set it
    return line


_STOP = object()
_MOST_LINES_PER_WRITE = 512
LINE_GATHER_SECONDS = 0.02
"""How long the line writer lets lines gather after the first: under load, one wake-up and one write for many."""


class CutAnswersAreNotAppErrors(logging.Filter):
    """When a provider's answer breaks off, ccproxy ends the client's there too, as the provider did,
    and records why (``upstream_stream_aborted``, ...); uvicorn then logs "ASGI callable returned
    without completing response." at ERROR, as for a failed application: one INFO line instead."""

    _UVICORN_MESSAGE = "ASGI callable returned without completing response."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self._UVICORN_MESSAGE:
            record.msg = "an answer was cut short and its connection closed (the request's access record says why)"
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class _AccessLines:
    """Where :func:`queue_access_line` puts records: the queue of the running line writer, if any."""

    queue: queue.SimpleQueue | None = None


def queue_access_line(record: AccessRecord) -> bool:
    """Hand the access line of ``record`` to the line writer; False when logging is not set up by ccproxy."""
    lines = _AccessLines.queue
    if lines is None:
        return False
    lines.put((time.time(), record))
    return True


def configure_logging(settings: LoggingSettings) -> LineWriter:
    """Route every ccproxy and uvicorn log line through a queue to a thread that writes stderr.

    Writing to a pipe can block; this keeps that off the event loop. Stop the
    returned writer at exit to flush.
    """
    formatter: logging.Formatter = JsonFormatter() if settings.format == "json" else TextFormatter()
    log_queue: queue.SimpleQueue = queue.SimpleQueue()
    writer = LineWriter(log_queue, formatter, sys.stderr)
    root = logging.getLogger()
    handler = logging.handlers.QueueHandler(log_queue)
    handler.addFilter(LibraryWarningsLimited())  # first: the line it writes is then masked too
    handler.addFilter(NoKeysInDebugLines())
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").addFilter(NoQueriesInWebSocketLines())
    logging.getLogger("uvicorn.error").addFilter(OneLineStartupErrors())
    logging.getLogger("uvicorn.error").addFilter(CutsAreNotCrashes())
    logging.getLogger("uvicorn.error").addFilter(ClientTextNotUtf8())
    logging.getLogger("uvicorn.error").addFilter(CutAnswersAreNotAppErrors())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ccproxy writes its own access lines
    # LOGGING__ACCESS_LOG says whether they are written: a level that quiets the rest keeps them.
    access_logger.setLevel(logging.INFO)
    writer.start()
    _AccessLines.queue = log_queue
    return writer
