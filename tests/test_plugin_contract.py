"""The hook contract: the ``ccproxy`` handle, pluggy's options, start-up order and rollback (isolation: test_plugin_isolation.py)."""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import EntryPoint

import httpx
import pytest

from ccproxy_core import hookimpl
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host import lifecycle
from ccproxy_core.plugin_host.host import Ccproxy
from ccproxy_core.plugin_host.lifecycle import plugin_order, start_plugins, stop_plugins
from ccproxy_core.plugin_host.plugin_spec import PluginSpec
from ccproxy_core.plugin_host.plugins import get_plugin_manager, register_checked
from ccproxy_core.runtime.app import create_app
from ccproxy_core.testing import make_settings, temporary_plugin, wait_until

BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}


def ep(name: str, module: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.plugin_fixtures.{module}", group="ccproxy")


def send(proxy, **headers) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", json=BODY, headers={**HEADERS, **headers})


# --- the handle ---------------------------------------------------------------------


def test_module_level_hooks_keep_per_app_state_behind_the_handle(upstream, tmp_path):
    from ccproxy_core.testing import running_proxy

    counting = [ep("counting", "counting")]
    settings_a = make_settings(upstream.url, entry_points_=counting, plugins={"counting": {"label": "a"}})
    settings_b = make_settings(upstream.url, entry_points_=counting, plugins={"counting": {"label": "b"}})
    pm_a = get_plugin_manager(settings_a, [ep("counting", "counting")])
    pm_b = get_plugin_manager(settings_b, [ep("counting", "counting")])
    with running_proxy(settings_a, pm=pm_a) as a, running_proxy(settings_b, pm=pm_b) as b:
        send(a)
        send(a)
        send(b)
        wait_until(lambda: httpx.get(a.url + "/counting").json() == {"a": 2})
        wait_until(lambda: httpx.get(b.url + "/counting").json() == {"b": 1})
        assert isinstance(a.app.state.ccproxy, Ccproxy) and a.app.state.ccproxy is not b.app.state.ccproxy


def test_a_plugin_registered_on_a_running_app_is_called(proxy_factory):
    proxy = proxy_factory()
    seen = []

    class Late:
        @hookimpl
        def on_request_end(self, record):
            seen.append(record.status_code)

    with temporary_plugin(proxy.app.state.plugin_manager, Late()):
        assert send(proxy).status_code == 200
        wait_until(lambda: seen == [200])
    send(proxy)
    assert seen == [200]


# --- pluggy's options ---------------------------------------------------------------


class Ordered:
    """Records the order its implementations ran in, and what a wrapper saw."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl(tryfirst=True, specname="on_request_end")
    def first(self, record):
        self.log.append("tryfirst")

    @hookimpl(wrapper=True, specname="on_request_end")
    def around(self, record):
        self.log.append("wrapper before")
        results = yield
        self.log.append(f"wrapper after, {len(results)} results")
        return results


class Plain:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    @hookimpl(trylast=True)
    def on_request_end(self, context, record):  # the arguments of the first contract
        self.log.append("trylast")
        return "a result"

    @hookimpl(hookwrapper=True, specname="on_request_end")
    def old_style(self):
        self.log.append("hookwrapper before")
        outcome = yield
        self.log.append(f"hookwrapper after, {outcome.get_result()!r}")


def test_wrappers_specname_tryfirst_and_trylast_work_on_request_hooks(proxy_factory):
    log: list[str] = []
    proxy = proxy_factory(plugins=[Ordered(log), Plain(log)])
    assert send(proxy).status_code == 200
    wait_until(lambda: len(log) == 6)
    assert log[0] in ("wrapper before", "hookwrapper before") and log[1] in ("wrapper before", "hookwrapper before")
    assert log[2:4] == ["tryfirst", "trylast"]
    assert set(log[4:]) == {"wrapper after, 1 results", "hookwrapper after, ['a result']"}
    # An old-style hookwrapper returns nothing: before, each call of it was counted as the plugin's failure.
    assert not proxy.app.state.hook_errors


def test_a_wrapper_on_a_once_per_plugin_hook_is_refused_at_load():
    infos = {
        i.name: i
        for i in get_plugin_manager(
            make_settings("http://127.0.0.1:1"), [ep("wrapping", "startup_wrapper")]
        ).ccproxy_plugins
    }
    assert not infos["wrapping"].enabled
    assert "on_startup cannot be a wrapper (plugin wrapping)" in infos["wrapping"].reason


def test_a_wrapper_of_admit_request_is_refused_at_load():
    settings = make_settings("http://127.0.0.1:1")
    infos = {i.name: i for i in get_plugin_manager(settings, [ep("admitting", "admit_wrapper")]).ccproxy_plugins}
    assert not infos["admitting"].enabled
    assert "admit_request cannot be a wrapper (plugin admitting)" in infos["admitting"].reason


def test_a_hook_argument_the_contract_does_not_have_is_refused():
    class Typo:
        @hookimpl
        def on_request_end(self, recrod):
            pass

    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [])
    with pytest.raises(Exception, match="recrod"):
        register_checked(pm, Typo())
    assert pm.get_plugins() == set()


# --- start-up order and rollback --------------------------------------------------------


class Lifecycle:
    """A plugin that records its start-up and shutdown in a shared journal."""

    def __init__(self, name: str, journal: list[str], fail: bool = False, after: tuple[str, ...] = ()) -> None:
        self.name, self.journal, self.fail, self.after = name, journal, fail, after

    @hookimpl
    def register_plugin(self):
        return PluginSpec(starts_after=self.after)

    @hookimpl
    async def on_startup(self):
        await asyncio.sleep(0)
        if self.fail:
            raise StartupError(f"{self.name} cannot open its file")
        self.journal.append(f"start {self.name}")

    @hookimpl
    def on_shutdown(self):
        self.journal.append(f"stop {self.name}")


class EarlyBird(Lifecycle):
    @hookimpl(tryfirst=True)
    async def on_startup(self):
        self.journal.append(f"start {self.name}")


def host_with(*plugins: Lifecycle, **server: float) -> Ccproxy:
    settings = make_settings("http://127.0.0.1:1", server=server)
    pm = get_plugin_manager(settings, [])
    for plugin in plugins:
        register_checked(pm, plugin, plugin.name)
    return create_app(settings, pm).state.ccproxy


def test_plugins_start_in_registration_order_tryfirst_first_and_after_what_they_need():
    journal: list[str] = []
    host = host_with(
        Lifecycle("store", journal),
        Lifecycle("api", journal, after=("store", "absent")),
        Lifecycle("reader", journal, after=("api",)),
        EarlyBird("early", journal),
    )
    # "api" is registered before... itself needing "store": both keep registration order, early goes first.
    order = asyncio.run(start_plugins(host))
    assert order == ["early", "store", "api", "reader"]
    assert journal == ["start early", "start store", "start api", "start reader"]
    asyncio.run(stop_plugins(host, order))
    assert journal[4:] == ["stop reader", "stop api", "stop store", "stop early"]


def test_starts_after_moves_a_plugin_behind_one_registered_later():
    journal: list[str] = []
    host = host_with(Lifecycle("api", journal, after=("store",)), Lifecycle("store", journal))
    assert plugin_order(host.plugin_manager) == ["store", "api"]


def test_when_one_plugin_fails_to_start_those_already_started_are_shut_down():
    journal: list[str] = []
    host = host_with(
        Lifecycle("first", journal),
        Lifecycle("second", journal),
        Lifecycle("broken", journal, fail=True),
        Lifecycle("never", journal),
    )
    with pytest.raises(StartupError, match="plugin broken failed to start: broken cannot open its file"):
        asyncio.run(start_plugins(host))
    assert journal == ["start first", "start second", "stop second", "stop first"]


class BlockingStart(Lifecycle):
    @hookimpl
    def on_startup(self):
        time.sleep(0.3)  # a plain def that blocks: the event loop, and anything waiting on it, is held
        self.journal.append(f"start {self.name}")


def test_a_plugin_slow_to_start_is_named_while_ccproxy_waits_for_it(monkeypatch, caplog):
    monkeypatch.setattr(lifecycle, "SLOW_START_SECONDS", 0.1)
    journal: list[str] = []
    host = host_with(Lifecycle("quick", journal), BlockingStart("sluggish", journal))
    with caplog.at_level("WARNING", logger="ccproxy.plugins"):
        asyncio.run(start_plugins(host))
    warned = [record.getMessage() for record in caplog.records]
    assert len(warned) == 1 and warned[0].startswith("plugin sluggish has been starting (on_startup) for 0 s")
    assert "PLUGINS__DISABLED=sluggish" in warned[0]
    assert journal == ["start quick", "start sluggish"]


def test_the_builtin_logs_api_starts_after_the_builtin_store():
    settings = make_settings(
        "http://127.0.0.1:1", observability={"logs_endpoints_enabled": True, "logs_collection_enabled": True}
    )
    order = plugin_order(get_plugin_manager(settings))
    assert order.index("duckdb") < order.index("logs_api")


@pytest.mark.parametrize(
    ("store", "extra"),
    [("duckdb", {}), ("clickhouse", {"log_storage_backend": "clickhouse", "clickhouse_url": "clickhouse://h:9000"})],
)
def test_the_pushgateway_stops_after_the_stores_and_the_budgets_start_after_them(store, extra):
    settings = make_settings(
        "http://127.0.0.1:1",
        observability={
            "logs_collection_enabled": True,
            "metrics_endpoint_enabled": True,
            "pushgateway_url": "http://127.0.0.1:9",
            "budgets_enabled": True,
            **extra,
        },
    )
    order = plugin_order(get_plugin_manager(settings))  # shutdown runs it backwards
    assert order.index("metrics") < order.index("pushgateway") < order.index(store)
    # The budgets read their spend from the store as they start. Before, the Pushgateway pulled them ahead of
    # it: every restart reset every budget, and budgets shared through ClickHouse were never read again.
    assert order.index(store) < order.index("budgets")


# --- implementations written against the first contract keep working -------------------


class FirstContractPlugin:
    """Registers a per-app observer at start-up, the way plugins had to before the handle existed."""

    class Observer:
        def __init__(self) -> None:
            self.statuses: list[int] = []

        @hookimpl
        def on_request_start(self, context):
            pass

        @hookimpl
        def on_request_end(self, context, record):
            self.statuses.append(record.status_code)

    def __init__(self) -> None:
        self.observer = self.Observer()

    @hookimpl
    def on_startup(self, app, settings):
        app.state.plugin_manager.register(self.observer, name="first-contract.observer")

    @hookimpl
    def get_log_store(self, app, settings):
        return None

    @hookimpl
    def on_shutdown(self, app):
        app.state.plugin_manager.unregister(name="first-contract.observer")


def test_implementations_of_the_first_contract_still_run(proxy_factory):
    plugin = FirstContractPlugin()
    proxy = proxy_factory(plugins=[plugin])
    assert send(proxy, **{"x-mock-status": "429"}).status_code == 429
    wait_until(lambda: plugin.observer.statuses == [429])
    app = proxy.app
    assert (
        app.state.plugin_manager.hook.get_log_store(app=app, settings=app.state.settings, ccproxy=app.state.ccproxy)
        is None
    )


# --- a plugin's own paths while it is off -------------------------------------------------


class Switchable:
    """Declares /switchable, turned on by a setting of its own."""

    @hookimpl
    def register_plugin(self):
        return PluginSpec(own_paths=("/switchable",), switch="PLUGINS__SWITCHABLE__ENABLED")


def test_a_builtin_path_that_is_off_answers_404_naming_its_setting(proxy_factory, recorder):
    proxy = proxy_factory(plugins=[recorder], observability={"pushgateway_url": "http://127.0.0.1:9"})
    response = httpx.get(proxy.url + "/metrics")  # the metrics plugin runs (for the pushes) but does not serve
    assert response.status_code == 404
    assert response.json() == {
        "detail": "/metrics is off: set OBSERVABILITY__METRICS_ENDPOINT_ENABLED=true to serve it"
    }
    assert (
        httpx.get(proxy.url + "/logs/query")
        .json()["detail"]
        .endswith("set OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true to serve it")
    )
    assert recorder.starts == []  # not counted as proxied requests


def test_a_third_party_plugin_declares_its_own_off_paths(proxy_factory):
    proxy = proxy_factory(plugins=[Switchable()])
    response = httpx.get(proxy.url + "/switchable/status")
    assert response.json() == {"detail": "/switchable/status is off: set PLUGINS__SWITCHABLE__ENABLED=true to serve it"}


class StoreSpy:
    """Wraps the firstresult service hooks: sees (and may replace) the answer of the others."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    @hookimpl(wrapper=True)
    def get_metrics_registry(self):
        registry = yield
        self.seen.append(registry)
        return registry


def test_a_wrapper_sees_the_answer_of_a_firstresult_service_hook():
    settings = make_settings("http://127.0.0.1:1", observability={"metrics_endpoint_enabled": True})
    pm = get_plugin_manager(settings)
    spy = StoreSpy()
    register_checked(pm, spy)
    host = create_app(settings, pm).state.ccproxy
    registry = host.metrics_registry()
    assert registry is not None and spy.seen == [registry]


# --- a plugin's middleware ------------------------------------------------------------


class HeaderMiddleware:
    """The most common middleware there is: Starlette's ``@app.middleware("http")``, adding a header."""

    @hookimpl
    def register_routes(self, app):
        @app.middleware("http")
        async def add_header(request, call_next):
            response = await call_next(request)
            response.headers["x-plugin"] = "seen"
            return response


@pytest.mark.parametrize("stream", [False, True])
def test_a_plugins_http_middleware_leaves_proxied_answers_whole(proxy_factory, recorder, stream):
    proxy = proxy_factory(plugins=[HeaderMiddleware(), recorder])
    response = httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": stream}, headers=HEADERS)
    assert response.status_code == 200 and response.headers["x-plugin"] == "seen"
    assert (b"message_stop" in response.content) if stream else response.json()["usage"]["output_tokens"] > 0
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.error_type) == (200, None) and record.tokens_output
