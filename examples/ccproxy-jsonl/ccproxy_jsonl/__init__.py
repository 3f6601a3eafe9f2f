"""ccproxy plugin ``jsonl``: appends every access record to a size-rotated JSON Lines file.

Settings (environment or .env): CCPROXY_JSONL__PATH, CCPROXY_JSONL__MAX_BYTES,
CCPROXY_JSONL__BACKUPS, CCPROXY_JSONL__QUEUE_SIZE. See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl

from .lifecycle import start_exporter, stop_exporter

if TYPE_CHECKING:
    from fastapi import FastAPI


@hookimpl
def on_startup(app: FastAPI) -> None:
    """Open the file and start the writer thread; register this app's ``on_request_end``."""
    start_exporter(app)


@hookimpl
async def on_shutdown(app: FastAPI) -> None:
    """Write every queued record, close the file, stop the thread."""
    await stop_exporter(app)
