"""Plugin-owned settings: [plugins.<name>] tables, PLUGINS__<NAME>__* variables, unknown names refused."""

from __future__ import annotations

import json
import logging
import os
from importlib.metadata import EntryPoint

import pytest
from click.testing import CliRunner

from ccproxy_core.errors import SettingsError
from ccproxy_core.plugin_host.plugins import get_plugin_manager
from ccproxy_core.runtime.cli import main
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.testing import make_settings
from tests.plugin_fixtures.counting import CountingSettings
from tests.test_plugin_host import ep, infos_by_name

COUNTING = [EntryPoint(name="counting", value="tests.plugin_fixtures.counting", group="ccproxy")]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.split("__")[0] in {"SERVER", "UPSTREAM", "OBSERVABILITY", "SECURITY", "LOGGING", "PLUGINS"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CCPROXY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def config(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_plugin_table_in_the_file_and_its_variables_reach_the_plugin_typed(tmp_path, monkeypatch):
    path = config(tmp_path, '[plugins.counting]\nlabel = "from-file"\nlimit = 3\ntoken = "hunter2"\n')
    monkeypatch.setenv("PLUGINS__COUNTING__LIMIT", "7")
    settings = load_settings(path, entry_points_=COUNTING)
    counting = settings.plugins.counting
    assert isinstance(counting, CountingSettings)
    assert (counting.label, counting.limit) == ("from-file", 7)  # the environment beats the file, and is coerced
    assert counting.token.get_secret_value() == "hunter2"
    shown = settings.model_dump(mode="json")["plugins"]["counting"]
    assert shown == {"label": "from-file", "limit": 7, "token": "**********"}


def test_a_plugin_without_a_table_gets_its_defaults():
    assert load_settings(entry_points_=COUNTING).plugins.counting == CountingSettings()


@pytest.mark.parametrize(
    "variable, expected",
    [
        (
            "PLUGINS__COUNTING__LABL",
            "unknown setting PLUGINS__COUNTING__LABL (or plugins.counting.labl in a config file): "
            "did you mean PLUGINS__COUNTING__LABEL?",
        ),
        (
            "PLUGINS__CUONTING__LABEL",
            "unknown plugin table PLUGINS__CUONTING (or plugins.cuonting in a config file): "
            "did you mean PLUGINS__COUNTING?",
        ),
        (
            "OBSERVABILITY__METRIC_ENDPOINT_ENABLED",
            "unknown setting OBSERVABILITY__METRIC_ENDPOINT_ENABLED "
            "(or observability.metric_endpoint_enabled in a config file): "
            "did you mean OBSERVABILITY__METRICS_ENDPOINT_ENABLED?",
        ),
    ],
)
def test_an_unknown_variable_under_a_plugin_prefix_stops_with_the_closest_name(monkeypatch, variable, expected):
    monkeypatch.setenv(variable, "1")
    entry_points = None if variable.startswith("OBSERVABILITY") else COUNTING
    with pytest.raises(SettingsError) as raised:
        load_settings(entry_points_=entry_points)
    assert str(raised.value) == expected


def test_a_bad_value_in_a_plugin_table_names_its_variable(monkeypatch):
    monkeypatch.setenv("PLUGINS__COUNTING__LIMIT", "many")
    with pytest.raises(
        SettingsError, match=r"^invalid setting PLUGINS__COUNTING__LIMIT='many': Input should be a valid integer"
    ):
        load_settings(entry_points_=COUNTING)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "[obsrvability]\ndashboard_enabled = true\n",
            "unknown section [obsrvability] in the config file: did you mean [observability]?",
        ),
        (
            "[server]\nprot = 9000\n",
            "unknown setting SERVER__PROT (or server.prot in a config file): did you mean SERVER__PORT?",
        ),
        ("[observability]\ndashbord_enabled = true\n", "did you mean OBSERVABILITY__DASHBOARD_ENABLED?"),
        ("[plugins.counting]\nlimt = 1\n", "did you mean PLUGINS__COUNTING__LIMIT?"),
    ],
)
def test_an_unknown_key_in_the_config_file_stops_with_the_closest_name(tmp_path, text, expected):
    entry_points = COUNTING if "counting" in text else None
    with pytest.raises(SettingsError, match=r"^unknown") as raised:
        load_settings(config(tmp_path, text), entry_points_=entry_points)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


def test_generic_prefixes_only_warn_because_other_programs_share_them(monkeypatch, caplog):
    monkeypatch.setenv("SERVER__PROT", "9000")
    monkeypatch.setenv("LOGGING__DIR", "/var/log/other-program")
    with caplog.at_level(logging.WARNING, logger="ccproxy.settings"):
        settings = load_settings()
    assert settings.server.port == 8000
    assert (
        "ignoring unknown setting SERVER__PROT (or server.prot in a config file): did you mean SERVER__PORT?"
        in caplog.text
    )
    assert "LOGGING__DIR" in caplog.text


def test_a_misspelt_attribution_variable_is_warned_about_with_the_closest_name(monkeypatch, caplog):
    monkeypatch.setenv("ATTRIBUTION__KEY", '{"3f2a9c1b7d4e": "alice-laptop"}')
    monkeypatch.setenv("ATTRIBUTION__KEYS__0123456789ab", "bob-desktop")
    with caplog.at_level(logging.WARNING, logger="ccproxy.settings"):
        settings = load_settings()
    assert settings.attribution.keys == {"0123456789ab": "bob-desktop"}
    attribution_warnings = [message for message in caplog.messages if "ATTRIBUTION__" in message]
    assert attribution_warnings == [
        "ignoring unknown setting ATTRIBUTION__KEY (or attribution.key in a config file): did you mean ATTRIBUTION__KEYS?"
    ]


def test_the_table_of_a_plugin_disabled_by_name_is_kept_unchecked(monkeypatch):
    monkeypatch.setenv("PLUGINS__DISABLED", "counting")
    monkeypatch.setenv("PLUGINS__COUNTING__ANYTHING", "x")
    assert load_settings(entry_points_=COUNTING).plugins.model_extra == {"counting": {"anything": "x"}}


def test_an_observability_key_is_only_warned_about_while_a_builtin_is_disabled_by_name(monkeypatch, caplog):
    monkeypatch.setenv("PLUGINS__DISABLED", "metrics")
    monkeypatch.setenv("OBSERVABILITY__METRICS_ENDPOINT_ENABLED", "true")
    with caplog.at_level(logging.WARNING, logger="ccproxy.settings"):
        settings = load_settings()
    assert not hasattr(settings.observability, "metrics_endpoint_enabled")
    assert "OBSERVABILITY__METRICS_ENDPOINT_ENABLED" in caplog.text


def test_config_show_lists_every_builtin_setting_under_observability(tmp_path):
    path = config(tmp_path, '[observability]\nduckdb_path = "/data/ccproxy.duckdb"\npushgateway_job = "blue"\n')
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)["observability"]
    assert shown["duckdb_path"] == "/data/ccproxy.duckdb" and shown["pushgateway_job"] == "blue"
    assert {"metrics_endpoint_enabled", "logs_endpoints_enabled", "dashboard_enabled", "stream_replay_size"} <= set(
        shown
    )


def test_an_unknown_setting_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(main, ["config", "show", "--config", str(config(tmp_path, "[obsrvability]\n"))])
    assert result.exit_code == 2
    assert result.output == "error: unknown section [obsrvability] in the config file: did you mean [observability]?\n"


def test_a_plugins_invalid_default_is_blamed_on_the_plugin_not_on_the_operator():
    # Before, the line said "invalid setting PLUGINS__BAD_DEFAULT__RETRIES='three'", a setting nobody set.
    broken = [EntryPoint(name="bad_default", value="tests.plugin_fixtures.bad_default", group="ccproxy")]
    with pytest.raises(SettingsError) as caught:
        load_settings(entry_points_=broken)
    assert str(caught.value).startswith("plugin bad_default is broken: the default of its setting retries is invalid")
    assert "PLUGINS__DISABLED" in str(caught.value)


def test_settings_that_are_not_a_model_fail_the_plugin_at_load():
    # Before, PluginSpec(settings=dict) loaded, and its table then took any key at all.
    pm = get_plugin_manager(make_settings("http://127.0.0.1:1"), [ep("dict_settings", "dict_settings")])
    info = infos_by_name(pm)["dict_settings"]
    assert not info.enabled and pm.get_plugin("dict_settings") is None
    assert info.reason.endswith("PluginSpec.settings must be a pydantic model class, not <class 'dict'>")


TYPED = [EntryPoint(name="typed", value="tests.plugin_fixtures.typed_settings", group="ccproxy")]


def test_a_required_plugin_setting_left_unset_is_named_in_full(monkeypatch):
    # Before: "invalid setting PLUGINS__TOKEN=(missing)", a name that is no setting at all.
    with pytest.raises(SettingsError, match=r"^invalid setting PLUGINS__TYPED__TOKEN=\(missing\)"):
        load_settings(entry_points_=TYPED)


@pytest.mark.parametrize(
    ("names", "weights"),
    [('["a", "b"]', '{"x": 1, "y": 2}'), ("a, b", '{"x": 1, "y": 2}')],
)
def test_list_dict_and_nested_plugin_settings_are_read_from_the_environment(monkeypatch, names, weights):
    monkeypatch.setenv("PLUGINS__TYPED__TOKEN", "s3cret")
    monkeypatch.setenv("PLUGINS__TYPED__NAMES", names)
    monkeypatch.setenv("PLUGINS__TYPED__WEIGHTS", weights)
    monkeypatch.setenv("PLUGINS__TYPED__INNER__DEPTH", "3")
    typed = load_settings(entry_points_=TYPED).plugins.typed
    assert (typed.names, typed.weights, typed.inner.depth) == (["a", "b"], {"x": 1, "y": 2}, 3)


def test_a_misspelt_key_of_a_nested_plugin_table_stops_with_the_closest_name(tmp_path, monkeypatch):
    monkeypatch.setenv("PLUGINS__TYPED__TOKEN", "s3cret")
    monkeypatch.setenv("PLUGINS__TYPED__INNER__DEPHT", "3")
    with pytest.raises(SettingsError, match="did you mean PLUGINS__TYPED__INNER__DEPTH"):
        load_settings(entry_points_=TYPED)
    monkeypatch.delenv("PLUGINS__TYPED__INNER__DEPHT")
    path = config(tmp_path, "[plugins.typed]\ntoken = 'x'\n[plugins.typed.inner]\ndepht = 2\n")
    with pytest.raises(SettingsError, match=r"plugins\.typed\.inner\.depht in a config file"):
        load_settings(path, entry_points_=TYPED)


UPPER = [EntryPoint(name="Upper", value="tests.plugin_fixtures.capital_name", group="ccproxy")]


def test_a_plugin_named_with_capitals_takes_its_settings_from_the_environment_too(tmp_path, monkeypatch):
    # Before: "unknown plugin table PLUGINS__UPPER (or plugins.upper in a config file): did you mean PLUGINS__UPPER?"
    path = config(tmp_path, '[plugins.Upper]\nlevel = 2\nlabel = "from-file"\n')
    monkeypatch.setenv("PLUGINS__UPPER__LEVEL", "5")
    upper = load_settings(path, entry_points_=UPPER).plugins.Upper
    assert (upper.level, upper.label) == (5, "from-file")  # the environment over the file, field by field


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        # Before: accepted, and every push failed (the Pushgateway refuses an empty job).
        ("OBSERVABILITY__PUSHGATEWAY_JOB", "", "at least 1 character"),
        # Before: start-up stopped with "Python int too large to convert to C ssize_t", no setting named.
        ("OBSERVABILITY__STREAM_REPLAY_SIZE", str(2**70), "less than or equal to 1000000"),
        ("OBSERVABILITY__STREAM_QUEUE_SIZE", str(2**70), "less than or equal to 1000000"),
    ],
)
def test_a_built_in_plugin_setting_out_of_its_range_exits_2_naming_it(tmp_path, monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2
    assert result.output.startswith(f"error: invalid setting {variable}=") and named in result.output
    assert result.output.count("\n") == 1
