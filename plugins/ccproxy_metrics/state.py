"""The metrics plugin's per-app state: one registry, its families, its observer.

Kept on ``app.state.ccproxy_metrics`` (never in module globals) because tests and
embedders build many apps in one process, and each must count only its own requests.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_metrics.collectors import LogStoreCollector, PluginErrorsCollector
from ccproxy_metrics.families import MetricFamilies
from ccproxy_metrics.observer import MetricsObserver
from ccproxy_metrics.settings import MetricsSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ccproxy_core.plugin_host.host import Ccproxy
    from ccproxy_core.runtime.settings import Settings

STATE_ATTRIBUTE = "ccproxy_metrics"
PLUGIN_NAME = "metrics"


@dataclass(frozen=True, slots=True)
class MetricsState:
    """Everything the metrics plugin keeps for one app."""

    registry: CollectorRegistry
    families: MetricFamilies
    observer: MetricsObserver
    log_stores: LogStoreCollector


def metrics_state(app: FastAPI, settings: Settings | None = None) -> MetricsState:
    """The app's metrics state, created on first use.

    Created lazily because whichever asks first (route registration, start-up, the
    pushgateway plugin asking for the registry) must find every family already there.
    """
    state = getattr(app.state, STATE_ATTRIBUTE, None)
    if state is None:
        state = _build_state(app, settings or app.state.settings)
        setattr(app.state, STATE_ATTRIBUTE, state)
    return state


def _build_state(app: FastAPI, settings: Settings) -> MetricsState:
    registry = CollectorRegistry()
    own = section_values(settings, MetricsSettings)
    attribution = tuple(own.metrics_attribution_labels)
    observer = MetricsObserver.in_registry(registry, own.metrics_model_label_cap, attribution)
    registry.register(PluginErrorsCollector(app))
    log_stores = LogStoreCollector(app)
    registry.register(log_stores)
    # The process's memory, CPU and open files (process_*), the interpreter and its collections (python_*).
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return MetricsState(registry=registry, families=observer.families, observer=observer, log_stores=log_stores)


def start_observing(ccproxy: Ccproxy) -> None:
    """Let the request hooks count this app's requests, and keep the log store in view once it has started."""
    state = metrics_state(ccproxy.app, ccproxy.settings)
    own = ccproxy.state(PLUGIN_NAME)
    own.observer = state.observer
    own.store_watch = asyncio.ensure_future(state.log_stores.remember_store_once_started(ccproxy))


def observer_of(ccproxy: Ccproxy) -> MetricsObserver | None:
    """The observer counting this app's requests, or ``None`` outside start-up and shutdown."""
    return getattr(ccproxy.state(PLUGIN_NAME), "observer", None)


def stop_observing(ccproxy: Ccproxy) -> None:
    """Stop counting (the registry stays, for a last push or scrape)."""
    own = ccproxy.state(PLUGIN_NAME)
    own.observer = None
    watch = getattr(own, "store_watch", None)
    if watch is not None:
        watch.cancel()  # a start-up that failed never set ``started``
