"""Families read at scrape time from state that other parts of ccproxy own.

These run wherever the registry is collected: in a request handler's worker thread for
/metrics, and in the Pushgateway plugin's push thread. They only read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from fastapi import FastAPI

logger = logging.getLogger("ccproxy.metrics")


class PluginErrorsCollector:
    """``ccproxy_plugin_errors_total{plugin, hook}`` from the core's ``app.state.hook_errors``."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def describe(self) -> Iterator[Metric]:
        """The family, without samples (lets the registry check names without collecting)."""
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        """One sample per (plugin, hook) that has raised at least once."""
        family = self._family()
        # A copy: the event loop may add a key while this runs in another thread.
        hook_errors = dict(getattr(self._app.state, "hook_errors", None) or {})
        for (plugin, hook), count in sorted(hook_errors.items()):
            family.add_metric([plugin, hook], count)
        yield family

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily(
            "ccproxy_plugin_errors",
            "Exceptions raised by plugins in request hooks (the request itself went on).",
            labels=("plugin", "hook"),
        )


_LOG_STORE_FAMILIES: tuple[tuple[str, type[GaugeMetricFamily | CounterMetricFamily], str, str], ...] = (
    ("queue_depth", GaugeMetricFamily, "ccproxy_log_queue_depth", "Access records waiting for the log writer."),
    (
        "dropped_records",
        CounterMetricFamily,
        "ccproxy_log_dropped_records",
        "Access records dropped because the log writer's queue was full.",
    ),
    (
        "write_errors",
        CounterMetricFamily,
        "ccproxy_log_write_errors",
        "Failed writes of access-record batches to the log store.",
    ),
    ("rows_written", CounterMetricFamily, "ccproxy_log_rows_written", "Access records written to the log store."),
    (
        "last_flush_at",
        GaugeMetricFamily,
        "ccproxy_log_last_flush_timestamp_seconds",
        "Unix time of the log writer's last successful write.",
    ),
)


class LogStoreCollector:
    """The access-log writer's health, from the active log store's ``stats()``.

    The store is asked for through the ``get_log_store`` hook at every scrape, so a
    third-party store is measured too, and no store (storage off) means no samples.
    """

    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._warned = False
        self._last_store: Any = None

    def describe(self) -> Iterator[Metric]:
        """The families, without samples."""
        for _key, family_type, name, documentation in _LOG_STORE_FAMILIES:
            yield family_type(name, documentation)

    def collect(self) -> Iterator[Metric]:
        """The families, with one sample each when a store reports that figure."""
        stats = self._stats()
        for key, family_type, name, documentation in _LOG_STORE_FAMILIES:
            family = family_type(name, documentation)
            value = stats.get(key)
            if value is not None:
                family.add_metric([], float(value))
            yield family

    async def remember_store_once_started(self, host: Any) -> None:
        """Keep the active store once every plugin has started, so that its final figures are still read after it
        stops (the Pushgateway's last push) when nothing scraped or pushed before: a process stopped within its
        first push interval."""
        await host.started.wait()
        with contextlib.suppress(Exception):  # a broken store is reported at the next scrape, by _stats
            self._last_store = host.log_store() or self._last_store

    def _stats(self) -> dict[str, Any]:
        host = getattr(self._app.state, "ccproxy", None)
        if host is None:
            return {}
        try:
            # Once stopped, the store is no longer given; its writer's figures are then final (the records it
            # dropped while stopping included), and the Pushgateway's last push, after it, must carry them.
            store = host.log_store() or self._last_store
            self._last_store = store
            return dict(store.stats()) if store is not None else {}
        except Exception as error:  # noqa: BLE001 - a broken store must not break the whole exposition
            if not self._warned:
                self._warned = True
                logger.warning("log store stats unavailable for /metrics: %r", error)
            return {}
