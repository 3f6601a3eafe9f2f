"""Start and stop the exporter of one app, keeping it in ``ccproxy.state("jsonl")``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccproxy_core import StartupError

from .exporter import JsonlExporter
from .settings import JsonlSettings

if TYPE_CHECKING:
    from ccproxy_core import Ccproxy

PLUGIN_NAME = "jsonl"


def start_exporter(ccproxy: Ccproxy) -> JsonlExporter:
    """Open the file named by this app's settings and start the writer."""
    settings = ccproxy.settings_of(JsonlSettings)
    try:
        exporter = JsonlExporter(settings)
    except OSError as exc:
        raise StartupError(f"cannot open PLUGINS__JSONL__PATH={settings.path}: {exc.strerror or exc}") from None
    exporter.start()
    ccproxy.state(PLUGIN_NAME).exporter = exporter
    return exporter


def exporter_of(ccproxy: Ccproxy) -> JsonlExporter | None:
    """This app's running exporter, or ``None`` outside start-up and shutdown."""
    return getattr(ccproxy.state(PLUGIN_NAME), "exporter", None)


async def stop_exporter(ccproxy: Ccproxy) -> None:
    """Stop taking records, then write what is queued and close the file, off the event loop."""
    exporter = exporter_of(ccproxy)
    if exporter is None:
        return
    ccproxy.state(PLUGIN_NAME).exporter = None
    await asyncio.to_thread(exporter.stop)
