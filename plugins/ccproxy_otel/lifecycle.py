"""Starting and stopping the exporter with the server; its state lives on ``app.state.ccproxy_otel``."""

from __future__ import annotations

import asyncio
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
    await asyncio.to_thread(pipeline.shutdown)
