"""Starting and stopping the exporter with the server; its state lives on ``app.state.ccproxy_otel``."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_otel.observer import OBSERVER_NAME, SpanObserver
from ccproxy_otel.pipeline import Pipeline, build_pipeline
from ccproxy_otel.settings import OtelSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.runtime.settings import Settings

STATE_ATTRIBUTE = "ccproxy_otel"


def start_exporting(app: FastAPI, settings: Settings) -> None:
    """Build the pipeline from the OTEL_* variables and register the app's request observer."""
    pipeline = build_pipeline(with_metrics=section_values(settings, OtelSettings).otel_metrics_enabled)
    observer = SpanObserver(pipeline, settings.upstream)
    setattr(app.state, STATE_ATTRIBUTE, (pipeline, observer))
    app.state.plugin_manager.register(observer, name=OBSERVER_NAME)


async def stop_exporting(app: FastAPI) -> None:
    """Unregister the observer and flush what the batch processor still holds."""
    state: tuple[Pipeline, SpanObserver] | None = getattr(app.state, STATE_ATTRIBUTE, None)
    if state is None:
        return
    setattr(app.state, STATE_ATTRIBUTE, None)
    pipeline, observer = state
    if app.state.plugin_manager.is_registered(observer):
        app.state.plugin_manager.unregister(observer)
    # A daemon thread of its own, not the loop's executor: when the collector does not answer, the SDK
    # retries each batch until its timeout, and the process must be free to exit when ccproxy's
    # shutdown time is up (the plugin host stops waiting for this coroutine then).
    loop = asyncio.get_running_loop()
    finished: asyncio.Future[None] = loop.create_future()
    threading.Thread(
        target=_shut_down, args=(pipeline, loop, finished), name="ccproxy-otel-shutdown", daemon=True
    ).start()
    await finished


def _shut_down(pipeline: Pipeline, loop: asyncio.AbstractEventLoop, finished: asyncio.Future[None]) -> None:
    try:
        pipeline.shutdown()
    finally:
        try:
            loop.call_soon_threadsafe(_settle, finished)
        except RuntimeError:  # the loop has closed: nobody waits any more
            pass


def _settle(finished: asyncio.Future[None]) -> None:
    if not finished.done():  # cancelled when the plugin host stopped waiting
        finished.set_result(None)
