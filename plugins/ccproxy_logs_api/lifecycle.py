"""Start and stop the live stream hub of one app, and the observer that feeds it."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI

from ccproxy_core.settings import Settings

from .stream import StreamHub, StreamObserver
from .stream_route import HUB_ATTRIBUTE

OBSERVER_NAME = "logs_api.observer"


def start_stream(app: FastAPI, settings: Settings) -> None:
    """Create the hub on ``app.state`` and register its ``on_request_end`` observer."""
    observability = settings.observability
    hub = StreamHub(observability.stream_max_subscribers, observability.stream_queue_size,
                    observability.stream_replay_size)
    hub.bind_loop(asyncio.get_running_loop())
    setattr(app.state, HUB_ATTRIBUTE, hub)
    app.state.plugin_manager.register(StreamObserver(hub), name=OBSERVER_NAME)


def stop_stream(app: FastAPI) -> None:
    """Stop feeding the hub and end every open stream."""
    plugin_manager = app.state.plugin_manager
    if plugin_manager.get_plugin(OBSERVER_NAME) is not None:
        plugin_manager.unregister(name=OBSERVER_NAME)
    hub = getattr(app.state, HUB_ATTRIBUTE, None)
    if hub is not None:
        hub.close()
        setattr(app.state, HUB_ATTRIBUTE, None)
