"""Configure ccproxy's own log output: text or JSON lines, written off the event loop."""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime

from ccproxy_core.settings import LoggingSettings


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


class OneLineStartupErrors(logging.Filter):
    """uvicorn prints a traceback when the lifespan fails; ccproxy's own errors need only their message."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        marker = text.rfind("ccproxy_core.errors.")
        if marker != -1 and "Traceback" in text:
            record.msg, record.args = "error: " + text[marker:].split(": ", 1)[-1].strip(), None
        return True


def configure_logging(settings: LoggingSettings) -> logging.handlers.QueueListener:
    """Route every ccproxy and uvicorn log line through a queue to a thread that writes stderr.

    Writing to a pipe can block; this keeps that off the event loop. Stop the
    returned listener at exit to flush.
    """
    formatter: logging.Formatter = (
        JsonFormatter() if settings.format == "json" else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    stream_handler = logging.StreamHandler(sys.stderr)
    stream_handler.setFormatter(formatter)
    log_queue: queue.SimpleQueue = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(log_queue, stream_handler, respect_handler_level=False)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    root.setLevel(settings.level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.error").addFilter(OneLineStartupErrors())
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)  # ccproxy writes its own access lines
    listener.start()
    return listener
