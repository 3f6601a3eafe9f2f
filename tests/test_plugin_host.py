"""The plugin host: discovery by entry point, enablement, isolation of broken plugins."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from types import SimpleNamespace

import pluggy
import pytest
from starlette.routing import Mount, Route

from ccproxy_core import hookimpl
from ccproxy_core.errors import PluginLoadError
from ccproxy_core.plugin_host.plugins import get_plugin_manager, register_checked
from ccproxy_core.runtime.app import create_app
from ccproxy_core.runtime.plugin_routes import takes_api_paths
from ccproxy_core.testing import make_settings

BUILTINS = ("dashboard", "duckdb", "logs_api", "metrics", "pushgateway")


def ep(name: str, module: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"tests.plugin_fixtures.{module}", group="ccproxy")


def infos_by_name(pm):
    return {info.name: info for info in pm.ccproxy_plugins}


def test_builtin_plugins_are_discovered_through_entry_points_and_off_by_default():
    infos = infos_by_name(get_plugin_manager(make_settings("http://127.0.0.1:1")))
    assert set(BUILTINS) <= set(infos)
    for name in BUILTINS:
        assert infos[name].enabled is False and infos[name].distribution == "ccproxy-observability"
    assert infos["metrics"].reason == "OBSERVABILITY__METRICS_ENDPOINT_ENABLED=false"
    assert infos["duckdb"].reason == "OBSERVABILITY__LOGS_COLLECTION_ENABLED=false"


def test_flags_enable_builtin_plugins_and_they_load():
    settings = make_settings(
        "http://127.0.0.1:1", observability={"metrics_endpoint_enabled": True, "logs_endpoints_enabled": True}
    )
    pm = get_plugin_manager(settings)
    infos = infos_by_name(pm)
    assert infos["metrics"].enabled and infos["logs_api"].enabled and not infos["dashboard"].enabled
    assert pm.get_plugin("metrics") is not None and pm.get_plugin("dashboard") is None


def test_storage_backend_none_keeps_duckdb_off():
    settings = make_settings(
        "http://127.0.0.1:1", observability={"logs_collection_enabled": True, "log_storage_backend": "none"}
    )
    assert infos_by_name(get_plugin_manager(settings))["duckdb"].reason == "OBSERVABILITY__LOG_STORAGE_BACKEND=none"


def test_a_plugin_that_fails_to_import_is_reported_and_others_load():
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("good", "good"), ep("broken", "broken_import")])
    infos = infos_by_name(pm)
    assert infos["good"].enabled and infos["good"].hooks == ["on_request_end"]
    assert not infos["broken"].enabled
    assert "ImportError: this plugin needs a package that is not installed" in infos["broken"].reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("tests.plugin_fixtures.exits_on_import", "failed to load: it called sys.exit('usage: run me as a script')"),
        ("tests.plugin_fixtures.not_a_plugin:NOTHING", "not_a_plugin:NOTHING is None, not a module, class or object"),
        ("tests.plugin_fixtures.not_a_plugin:NUMBER", "not_a_plugin:NUMBER is 42, not a module, class or object"),
    ],
)
def test_an_entry_point_that_exits_or_names_no_plugin_is_listed_as_failed_and_the_others_load(value, reason):
    # Before, sys.exit() in a plugin's import ended ccproxy itself, and None or 42 were listed without a word.
    broken = EntryPoint(name="broken", value=value, group="ccproxy")
    infos = infos_by_name(get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("good", "good"), broken]))
    assert infos["good"].enabled
    assert not infos["broken"].enabled and reason in infos["broken"].reason


def test_register_plugin_is_asked_once_per_load():
    from tests.plugin_fixtures import spec_counter

    spec_counter.ASKED.clear()
    settings = make_settings("http://127.0.0.1:1")
    create_app(settings, get_plugin_manager(settings, [ep("counter", "spec_counter"), ep("good", "good")]))
    assert len(spec_counter.ASKED) == 1  # before: once for every plugin loaded after it, and again per step


def test_strict_mode_makes_a_load_failure_fatal_in_one_line_naming_the_way_out(caplog):
    settings = make_settings("http://127.0.0.1:1", plugins={"strict": True})
    with pytest.raises(PluginLoadError, match="plugin broken failed to load: ImportError") as refused:
        get_plugin_manager(settings, [ep("broken", "broken_import")])
    assert "name it in PLUGINS__DISABLED" in str(refused.value)
    assert not [r for r in caplog.records if "broken" in r.getMessage()]  # the caller prints it, once


@pytest.mark.parametrize(
    "module, error",
    [
        ("rule_raises", "enabled_when failed: KeyError: 'no such setting'"),
        ("rule_answers_yes", "enabled_when failed: TypeError: it returned 'yes', not (enabled, reason)"),
    ],
)
def test_an_enabling_rule_that_fails_is_reported_like_an_import_failure_and_others_load(module, error, caplog):
    with caplog.at_level(logging.ERROR, logger="ccproxy.plugins"):
        pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("good", "good"), ep("rule", module)])
    infos = infos_by_name(pm)
    assert infos["good"].enabled and pm.get_plugin("good") is not None
    assert not infos["rule"].enabled and pm.get_plugin("rule") is None and infos["rule"].hooks == []
    assert infos["rule"].error.startswith(error) and infos["rule"].reason == f"failed to load: {infos['rule'].error}"
    assert [r.getMessage() for r in caplog.records] == [f"plugin rule failed to load: {infos['rule'].error}"]


def test_strict_mode_names_every_plugin_that_failed_to_load_in_one_line(caplog):
    # Before, only the first: an author with several broken plugins mended them one start at a time.
    settings = make_settings("http://127.0.0.1:1", plugins={"strict": True})
    found = [ep("broken", "broken_import"), ep("good", "good"), ep("rule", "rule_raises"), ep("typo", "misspelled")]
    with pytest.raises(PluginLoadError) as refused:
        get_plugin_manager(settings, found)
    message = str(refused.value)
    assert message.startswith("3 plugins failed to load: plugin broken: ImportError") and "\n" not in message
    assert "; plugin rule: enabled_when failed: KeyError" in message
    assert "; plugin typo: PluginValidationError: unknown hook 'on_request_ended'" in message
    assert "good" not in message and message.endswith("or name them in PLUGINS__DISABLED")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # the caller prints it, once


def test_strict_mode_makes_a_failing_enabling_rule_fatal_in_one_line():
    settings = make_settings("http://127.0.0.1:1", plugins={"strict": True})
    with pytest.raises(PluginLoadError, match=r"^plugin rule failed to load: enabled_when failed: KeyError") as refused:
        get_plugin_manager(settings, [ep("rule", "rule_raises")])
    assert "name it in PLUGINS__DISABLED" in str(refused.value) and "\n" not in str(refused.value)


def test_a_misspelled_hook_is_refused_not_silently_ignored():
    infos = infos_by_name(get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("typo", "misspelled")]))
    assert not infos["typo"].enabled
    assert infos["typo"].reason.endswith("unknown hook 'on_request_ended': did you mean on_request_end?")


@pytest.mark.parametrize(
    ("plugin", "fix"),
    [
        # Before, listed as enabled, and its hook never ran.
        ("Unmarked", "on_request_end is not marked as a hook, so ccproxy would never call it: mark it with @hookimpl"),
        ("Empty", "it implements no hook: mark each hook function with @hookimpl"),
        # Before, pluggy's words, naming no argument the hook gives.
        ("MisspelledArgument", "its on_request_end asks for recrod, which the hook does not give: name arguments from"),
        # Its properties are not run: this one would stop ccproxy.
        ("LAZY", "unknown hook 'on_request_ended': did you mean on_request_end?"),
        ("PartialHook", "on_request_end is marked as a hook but is a partial, which is never called as one"),
    ],
)
def test_a_plugin_whose_hooks_would_never_run_as_written_is_refused_with_the_fix(plugin, fix):
    entry = EntryPoint(name="slips", value=f"tests.plugin_fixtures.slips:{plugin}", group="ccproxy")
    infos = infos_by_name(get_plugin_manager(make_settings("http://127.0.0.1:1"), [entry]))
    assert not infos["slips"].enabled and fix in infos["slips"].reason
    assert "record" in infos["slips"].reason or plugin != "MisspelledArgument"


def test_an_async_def_hook_that_is_not_awaited_is_refused_and_listed_with_the_reason():
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("good", "good"), ep("sloppy", "async_routes")])
    infos = infos_by_name(pm)
    assert infos["good"].enabled and not infos["sloppy"].enabled and pm.get_plugin("sloppy") is None
    assert "register_routes of plugin sloppy is an async def" in infos["sloppy"].reason
    assert "make it a plain def" in infos["sloppy"].reason


@hookimpl
async def _coroutine_function():
    return None


@hookimpl
async def _async_generator():
    yield


@pytest.mark.parametrize("hook", ["register_plugin", "register_routes", "get_log_store", "get_metrics_registry"])
@pytest.mark.parametrize("function", [_coroutine_function, _async_generator])
def test_an_async_implementation_of_a_hook_called_synchronously_is_refused(hook, function):
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [])
    with pytest.raises(pluggy.PluginValidationError, match=rf"^{hook} of plugin sloppy is an async def,.*plain def"):
        register_checked(pm, SimpleNamespace(**{hook: function}), "sloppy")
    assert pm.get_plugin("sloppy") is None


@pytest.mark.parametrize("hook", ["on_startup", "on_request_start", "admit_request", "on_request_end", "on_shutdown"])
def test_an_awaited_hook_takes_an_async_def_but_not_an_async_generator(hook):
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [])
    register_checked(pm, SimpleNamespace(**{hook: _coroutine_function}), "fine")
    assert pm.get_plugin("fine") is not None
    with pytest.raises(pluggy.PluginValidationError, match=rf"^{hook} of plugin sloppy is an async generator"):
        register_checked(pm, SimpleNamespace(**{hook: _async_generator}), "sloppy")
    assert pm.get_plugin("sloppy") is None


def test_disabled_by_name_is_never_imported():
    settings = make_settings(
        "http://127.0.0.1:1",
        plugins={"disabled": ["broken", "metrics"]},
        observability={"metrics_endpoint_enabled": True},
    )
    infos = infos_by_name(get_plugin_manager(settings, [ep("broken", "broken_import"), ep("metrics", "good")]))
    assert infos["broken"].reason == infos["metrics"].reason == "disabled by name (PLUGINS__DISABLED)"
    assert infos["broken"].error is None


@pytest.mark.parametrize(
    "module, message",
    [
        ("route_clash", "plugin clash adds POST /v1/messages, which the proxy serves"),
        ("health_clash", "plugin clash adds GET /health, which plugin ccproxy already serves"),
        ("api_path_grab", "plugin clash adds '/v1/{rest:path}', which would take provider API paths"),
        ("api_mount", "plugin clash adds '/api/v1', which would take provider API paths"),
        ("router_clash", "plugin clash adds GET /health, which plugin ccproxy already serves"),
        ("router_api_grab", "plugin clash adds '/v1/files/{rest:path}', which would take provider API paths"),
        ("template_api_grab", "plugin clash adds '/{version}/assistants', which would take provider API paths"),
        ("hello_head_grab", "plugin clash adds HEAD /api/hello, which the proxy serves"),
        (
            "hello_template_grab",
            "plugin clash adds '/api/{anything}', which would take GET /api/hello: the proxy serves",
        ),
    ],
)
def test_a_route_conflict_stops_the_build_naming_both(module, message):
    settings = make_settings("http://127.0.0.1:1")
    pm = get_plugin_manager(settings, [ep("clash", module)])
    with pytest.raises(PluginLoadError, match=message):
        create_app(settings, pm)


def test_routes_beside_the_forwarded_ones_are_not_refused():
    settings = make_settings("http://127.0.0.1:1")
    app = create_app(settings, get_plugin_manager(settings, [ep("neighbours", "api_neighbours")]))
    paths = {getattr(route, "path", None) for route in app.router.routes}
    assert {"/api/{channel}", "/api/api/{name}", "/api/status"} <= paths


def test_a_plugin_taking_a_built_in_plugins_route_is_the_one_named(tmp_path):
    # Before, the third-party plugin's routes went first, and the logs API was named as the one adding it.
    settings = make_settings("http://127.0.0.1:1", tmp_path=tmp_path, observability={"logs_endpoints_enabled": True})
    logs_api = EntryPoint(name="logs_api", value="ccproxy_logs_api", group="ccproxy")
    found = [from_distribution(ep("clash", "logs_grab"), "other"), from_distribution(logs_api, "ccproxy-observability")]
    pm = get_plugin_manager(settings, found)
    with pytest.raises(
        PluginLoadError, match=r"^plugin clash adds GET /logs/query, which plugin logs_api already serves"
    ):
        create_app(settings, pm)


@pytest.mark.parametrize(
    ("path", "takes"),
    [
        ("/{a}/assistants", True),
        ("/{a}/{b}/{c}/{d}", True),
        ("/{a}/{b}", True),  # /v1/models
        ("/api/{v}/files", True),
        ("/v{n}/threads", True),
        ("/{rest:path}", True),
        ("/x/{a}/v1", False),
        ("/{a:int}/assistants", False),
        ("/dashboard/{view}", False),
        ("/{page}", False),
    ],
)
def test_a_template_takes_api_paths_when_any_path_it_matches_is_one(path, takes):
    assert takes_api_paths(Route(path, lambda request: None)) is takes


@pytest.mark.parametrize(("path", "takes"), [("/{a}", True), ("/api/{a}", True), ("/static", False)])
def test_a_mount_takes_api_paths_when_a_path_below_it_can_be_one(path, takes):
    assert takes_api_paths(Mount(path, routes=[])) is takes


def test_a_disabled_name_no_plugin_has_is_warned_with_the_closest(caplog):
    settings = make_settings("http://127.0.0.1:1", plugins={"disabled": ["dashbaord", "metrics"]})
    with caplog.at_level(logging.WARNING, logger="ccproxy.plugins"):
        get_plugin_manager(settings, [ep("dashboard", "good"), ep("metrics", "good")])
    warnings = [record.getMessage() for record in caplog.records if record.name == "ccproxy.plugins"]
    assert warnings == ["PLUGINS__DISABLED names 'dashbaord', which no installed plugin is (did you mean 'dashboard'?)"]


def from_distribution(entry_point: EntryPoint, distribution: str) -> EntryPoint:
    return entry_point._for(SimpleNamespace(name=distribution, version="1.0"))  # type: ignore[attr-defined]


def test_a_plugin_named_like_a_builtin_one_is_listed_not_loaded_and_the_builtin_stays(caplog):
    settings = make_settings("http://127.0.0.1:1", observability={"metrics_endpoint_enabled": True})
    found = [
        from_distribution(ep("metrics", "good"), "audit-dupe"),
        from_distribution(
            EntryPoint(name="metrics", value="ccproxy_metrics", group="ccproxy"), "ccproxy-observability"
        ),
    ]
    with caplog.at_level(logging.WARNING, logger="ccproxy.plugins"):
        pm = get_plugin_manager(settings, found)
    assert pm.get_plugin("metrics").__name__ == "ccproxy_metrics"
    listed = [(i.name, i.distribution, i.enabled, i.reason) for i in pm.ccproxy_plugins if i.name == "metrics"]
    assert sorted(listed, key=lambda row: row[1]) == [
        (
            "metrics",
            "audit-dupe",
            False,
            "not loaded: ccproxy-observability has a plugin of the same name, which is loaded",
        ),
        ("metrics", "ccproxy-observability", True, "OBSERVABILITY__METRICS_ENDPOINT_ENABLED=true"),
    ]
    assert any("two plugins are named 'metrics'" in r.getMessage() for r in caplog.records)


def test_plugins_whose_names_differ_only_in_case_clash_as_their_settings_would():
    # Before, both loaded, and PLUGINS__SPY__... was refused as no setting of either.
    found = [from_distribution(ep("spy", "good"), "ccproxy-spy"), from_distribution(ep("Spy", "counting"), "other")]
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), found)
    listed = sorted((i.name, i.enabled, i.reason) for i in pm.ccproxy_plugins)
    assert listed == [
        ("Spy", False, "not loaded: ccproxy-spy has a plugin of the same name, which is loaded"),
        ("spy", True, "installed"),
    ]


@pytest.mark.parametrize("name", ["strict", "disabled"])
def test_a_plugin_named_like_a_plugins_setting_is_not_loaded(name):
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep(name, "good")])
    [info] = pm.ccproxy_plugins
    assert pm.get_plugin(name) is None and not info.enabled
    assert info.reason == f"not loaded: its name is ccproxy's setting PLUGINS__{name.upper()}; rename its entry point"
