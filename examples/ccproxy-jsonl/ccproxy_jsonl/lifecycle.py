"""Start and stop the exporter of one app, keeping it on ``app.state.ccproxy_jsonl``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ccproxy_core.errors import StartupError

from .exporter import JsonlExporter
from .settings import load_jsonl_settings

if TYPE_CHECKING:
    from fastapi import FastAPI

STATE_ATTRIBUTE = "ccproxy_jsonl"
OBSERVER_NAME = "jsonl.exporter"


def start_exporter(app: FastAPI) -> JsonlExporter:
    """Read the settings, open the file, start the writer and register the request hook."""
    settings = load_jsonl_settings()
    try:
        exporter = JsonlExporter(settings)
    except OSError as exc:
        raise StartupError(f"cannot open CCPROXY_JSONL__PATH={settings.path}: {exc.strerror or exc}") from None
    exporter.start()
    setattr(app.state, STATE_ATTRIBUTE, exporter)
    app.state.plugin_manager.register(exporter, name=OBSERVER_NAME)
    return exporter


async def stop_exporter(app: FastAPI) -> None:
    """Unregister the request hook, then write what is queued and close the file, off the event loop."""
    exporter: JsonlExporter | None = getattr(app.state, STATE_ATTRIBUTE, None)
    if exporter is None:
        return
    plugin_manager = app.state.plugin_manager
    if plugin_manager.is_registered(exporter):
        plugin_manager.unregister(exporter)
    await asyncio.to_thread(exporter.stop)
    setattr(app.state, STATE_ATTRIBUTE, None)
