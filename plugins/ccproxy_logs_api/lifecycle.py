"""Start and stop the live stream hub of one app.

The hub is kept on ``app.state`` for the /logs/stream route, and its ``publish`` in
``ccproxy.state("logs_api")`` for the plugin's ``on_request_end``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from .settings import LogsApiSettings
from .stream import StreamHub
from .stream_route import HUB_ATTRIBUTE

if TYPE_CHECKING:
    from ccproxy_core.accounting.record import AccessRecord
    from ccproxy_core.plugin_host.host import Ccproxy

PLUGIN_NAME = "logs_api"


def start_stream(ccproxy: Ccproxy) -> None:
    """Create the hub on ``app.state`` and let ``on_request_end`` publish to it."""
    observability = ccproxy.settings_of(LogsApiSettings)
    hub = StreamHub(
        observability.stream_max_subscribers, observability.stream_queue_size, observability.stream_replay_size
    )
    hub.bind_loop(asyncio.get_running_loop())
    setattr(ccproxy.app.state, HUB_ATTRIBUTE, hub)
    ccproxy.state(PLUGIN_NAME).publish = hub.publish


def publisher_of(ccproxy: Ccproxy) -> Callable[[AccessRecord], None] | None:
    """The running hub's ``publish``, or ``None`` outside start-up and shutdown."""
    return getattr(ccproxy.state(PLUGIN_NAME), "publish", None)


def stop_stream(ccproxy: Ccproxy) -> None:
    """Stop feeding the hub and end every open stream."""
    ccproxy.state(PLUGIN_NAME).publish = None
    hub = getattr(ccproxy.app.state, HUB_ATTRIBUTE, None)
    if hub is not None:
        hub.close()
        setattr(ccproxy.app.state, HUB_ATTRIBUTE, None)
