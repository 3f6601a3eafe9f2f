"""ccproxy plugin ``jsonl``: appends every access record to a size-rotated JSON Lines file.

Settings: the ``[plugins.jsonl]`` table of ccproxy's config file, or PLUGINS__JSONL__PATH,
PLUGINS__JSONL__MAX_BYTES, PLUGINS__JSONL__BACKUPS, PLUGINS__JSONL__QUEUE_SIZE. See README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import PluginSpec, hookimpl

from .lifecycle import exporter_of, start_exporter, stop_exporter
from .settings import JsonlSettings

if TYPE_CHECKING:
    from ccproxy_core import AccessRecord, Ccproxy


@hookimpl
def register_plugin() -> PluginSpec:
    """Declare the settings model: ccproxy reads and checks [plugins.jsonl] and PLUGINS__JSONL__*."""
    return PluginSpec(settings=JsonlSettings)


@hookimpl
def on_startup(ccproxy: Ccproxy) -> None:
    """Open the file and start the writer thread."""
    start_exporter(ccproxy)


@hookimpl
def on_request_end(record: AccessRecord, ccproxy: Ccproxy) -> None:
    """Queue the record for the writer; never blocks."""
    exporter = exporter_of(ccproxy)
    if exporter is not None:
        exporter.submit(record)


@hookimpl
async def on_shutdown(ccproxy: Ccproxy) -> None:
    """Write every queued record, close the file, stop the thread."""
    await stop_exporter(ccproxy)
