"""Starting and stopping the pusher with the server; it lives in ``ccproxy.state("pushgateway")``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_pushgateway.pusher import Pusher, PushMetrics, PushPlan, create_push_metrics
from ccproxy_pushgateway.settings import PushgatewaySettings
from ccproxy_pushgateway.target import grouping_key, parse_push_url

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.plugin_host.host import Ccproxy

PLUGIN_NAME = "pushgateway"
METRICS_ATTRIBUTE = "ccproxy_pushgateway_metrics"


def start_pushing(ccproxy: Ccproxy) -> Pusher:
    """Build the pusher from the settings and start its interval loop."""
    app, settings = ccproxy.app, ccproxy.settings
    registry = ccproxy.metrics_registry()
    if registry is None:
        raise StartupError(
            "OBSERVABILITY__PUSHGATEWAY_URL is set but no plugin provides a metrics registry: "
            "remove 'metrics' from PLUGINS__DISABLED, or unset OBSERVABILITY__PUSHGATEWAY_URL"
        )
    observability = section_values(settings, PushgatewaySettings)
    try:
        target = parse_push_url(observability.pushgateway_url or "")
    except ValueError as error:
        raise StartupError(str(error)) from None
    plan = PushPlan(
        registry=registry,
        target=target,
        job=observability.pushgateway_job,
        grouping_key=grouping_key(settings),
        interval_seconds=observability.pushgateway_interval_seconds,
    )
    pusher = Pusher(plan, _push_metrics(app, plan), ccproxy.started)
    ccproxy.state(PLUGIN_NAME).pusher = pusher
    pusher.start()
    return pusher


async def stop_pushing(ccproxy: Ccproxy) -> None:
    """Stop the loop and push the final figures."""
    pusher: Pusher | None = getattr(ccproxy.state(PLUGIN_NAME), "pusher", None)
    if pusher is not None:
        ccproxy.state(PLUGIN_NAME).pusher = None
        await pusher.stop(ccproxy.seconds_to_stop())


def _push_metrics(app: FastAPI, plan: PushPlan) -> PushMetrics:
    # Created once per app: a second start of the same app must not register the families twice.
    metrics: PushMetrics | None = getattr(app.state, METRICS_ATTRIBUTE, None)
    if metrics is None:
        metrics = create_push_metrics(plan.registry)
        setattr(app.state, METRICS_ATTRIBUTE, metrics)
    return metrics
