"""The metrics plugin per app: a registry of its own, its settings, plugin hook errors and the log store's health."""

from __future__ import annotations

import logging
from collections import Counter

import pluggy
import prometheus_client
from fastapi import FastAPI
from prometheus_client import generate_latest

from ccproxy_core import hookimpl
from ccproxy_core.plugin_host import hookspecs
from ccproxy_core.plugin_host.host import Ccproxy
from ccproxy_core.testing import make_record, make_settings
from ccproxy_metrics import get_metrics_registry
from ccproxy_metrics.state import metrics_state
from tests.metrics_records import serve_one


def fastapi_app(**observability) -> FastAPI:
    app = FastAPI()
    app.state.settings = make_settings("http://127.0.0.1:1", observability=observability)
    return app


def test_two_apps_in_one_process_never_share_a_registry():
    first, second = fastapi_app(), fastapi_app()
    first_registry, second_registry = get_metrics_registry(first), get_metrics_registry(second)
    assert first_registry is not second_registry
    assert prometheus_client.REGISTRY not in (first_registry, second_registry)
    assert get_metrics_registry(first) is first_registry  # one registry per app, made once

    serve_one(metrics_state(first).observer, make_record())
    labels = {
        "method": "POST",
        "endpoint": "/v1/messages",
        "model": "claude-sonnet-4-5",
        "status": "200",
        "service_type": "anthropic",
    }
    assert first_registry.get_sample_value("ccproxy_requests_total", labels) == 1
    assert second_registry.get_sample_value("ccproxy_requests_total", labels) is None
    assert prometheus_client.REGISTRY.get_sample_value("ccproxy_requests_total", labels) is None


def test_the_model_label_cap_comes_from_the_settings():
    app = fastapi_app(metrics_model_label_cap=1)
    state = metrics_state(app)
    for model in ("first", "second"):
        serve_one(state.observer, make_record(model=model))
    assert (
        state.registry.get_sample_value(
            "ccproxy_tokens_total", {"type": "output", "model": "other", "service_type": "anthropic"}
        )
        == 40
    )


def test_plugin_hook_errors_are_exposed_per_plugin_and_hook():
    app = fastapi_app()
    app.state.hook_errors = Counter({("buggy", "on_request_end"): 3, ("buggy", "on_request_start"): 1})
    registry = get_metrics_registry(app)
    assert registry.get_sample_value("ccproxy_plugin_errors_total", {"plugin": "buggy", "hook": "on_request_end"}) == 3
    assert (
        registry.get_sample_value("ccproxy_plugin_errors_total", {"plugin": "buggy", "hook": "on_request_start"}) == 1
    )


class StoreWithStats:
    """A log store as a third party would provide one; only ``stats()`` matters here."""

    backend = "test"

    def __init__(self, stats=None, error: Exception | None = None) -> None:
        self._stats, self._error = stats, error

    def stats(self):
        if self._error is not None:
            raise self._error
        return self._stats


class StorePlugin:
    def __init__(self, store) -> None:
        self.store = store

    @hookimpl
    def get_log_store(self, app, settings):  # the arguments of the first contract still work
        return self.store


def app_with_store(store) -> FastAPI:
    app = fastapi_app()
    pm = pluggy.PluginManager("ccproxy")
    pm.add_hookspecs(hookspecs)
    pm.register(StorePlugin(store))
    app.state.ccproxy = Ccproxy(app, app.state.settings, pm)
    return app


def test_log_writer_health_comes_from_the_active_log_store():
    stats = {
        "queue_depth": 7,
        "dropped_records": 2,
        "write_errors": 1,
        "rows_written": 90,
        "last_flush_at": 1700000000.5,
    }
    registry = get_metrics_registry(app_with_store(StoreWithStats(stats)))
    assert registry.get_sample_value("ccproxy_log_queue_depth") == 7
    assert registry.get_sample_value("ccproxy_log_dropped_records_total") == 2
    assert registry.get_sample_value("ccproxy_log_write_errors_total") == 1
    assert registry.get_sample_value("ccproxy_log_rows_written_total") == 90
    assert registry.get_sample_value("ccproxy_log_last_flush_timestamp_seconds") == 1700000000.5


def test_a_stopped_log_store_keeps_its_final_figures_for_the_last_push():
    store = StoreWithStats({"queue_depth": 0, "dropped_records": 0, "rows_written": 5})
    plugin = StorePlugin(store)
    app = app_with_store(None)
    app.state.ccproxy.plugin_manager.register(plugin)
    registry = get_metrics_registry(app)
    assert registry.get_sample_value("ccproxy_log_rows_written_total") == 5
    store._stats = {"queue_depth": 0, "dropped_records": 649, "rows_written": 76}  # dropped while stopping
    plugin.store = None  # stopped: the store is no longer given
    assert registry.get_sample_value("ccproxy_log_dropped_records_total") == 649
    assert registry.get_sample_value("ccproxy_log_rows_written_total") == 76


def test_no_log_store_means_the_families_without_samples():
    registry = get_metrics_registry(app_with_store(None))
    exposition = generate_latest(registry).decode()
    assert "# TYPE ccproxy_log_queue_depth gauge" in exposition
    assert "\nccproxy_log_queue_depth " not in exposition


def test_a_broken_log_store_never_breaks_the_exposition(caplog):
    registry = get_metrics_registry(app_with_store(StoreWithStats(error=RuntimeError("disk on fire"))))
    with caplog.at_level(logging.WARNING, logger="ccproxy.metrics"):
        first = generate_latest(registry).decode()
        generate_latest(registry)
    assert "# TYPE ccproxy_requests_total counter" in first
    assert "\nccproxy_log_queue_depth " not in first
    assert [record.getMessage() for record in caplog.records] == [
        "log store stats unavailable for /metrics: RuntimeError('disk on fire')"
    ]
