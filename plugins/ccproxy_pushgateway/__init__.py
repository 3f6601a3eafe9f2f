"""Built-in ccproxy plugin: pushes the metrics registry to a Prometheus Pushgateway.

Loaded when OBSERVABILITY__PUSHGATEWAY_URL is set. Pushes every
OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS and once more on shutdown, as job
OBSERVABILITY__PUSHGATEWAY_JOB with grouping key ``instance``. See docs/metrics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core import hookimpl
from ccproxy_pushgateway.lifecycle import start_pushing, stop_pushing

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.settings import Settings


@hookimpl
async def on_startup(app: FastAPI, settings: Settings) -> None:
    """Start pushing in a background task: once right away, then every interval."""
    start_pushing(app, settings)


@hookimpl
async def on_shutdown(app: FastAPI) -> None:
    """Stop the background task and push the final figures once more."""
    await stop_pushing(app)
