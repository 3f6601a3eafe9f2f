"""Lines naming a bad setting never show a secret (a secret field's value, a key pasted as a name),
and settings that break at their first use (infinities, a misspelt key alias field) stop start-up."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field, SecretStr, ValidationError

from ccproxy_core.errors import SettingsError
from ccproxy_core.runtime.setting_errors import bad_setting_line, infinite_setting, is_secret_field
from ccproxy_core.runtime.settings_loader import NESTING_FIX, load_settings
from tests.test_settings import clean_environment  # noqa: F401 (an autouse fixture)

PASTED_KEY = "sk-ant-api03-SECRETVALUE123"


class Inner(BaseModel):
    token: SecretStr = Field(min_length=20)
    label: str = Field(min_length=5)


class Outer(BaseModel):
    dsn: SecretStr | None = Field(None, min_length=20)
    inner: Inner | None = None
    plain: int = Field(1, ge=1)


def errors_of(model: type[BaseModel], raw: dict) -> list[str]:
    with pytest.raises(ValidationError) as failed:
        model.model_validate(raw)
    return [bad_setting_line(error, model, ("plugins", "mine")) for error in failed.value.errors()]


def test_a_secret_fields_bad_value_is_masked_whatever_the_fields_name():
    lines = errors_of(Outer, {"dsn": "SECRETDSN123", "inner": {"token": "SECRETTOKEN", "label": "ab"}, "plain": 0})
    assert "SECRET" not in "\n".join(lines)
    assert lines[0].startswith("invalid setting PLUGINS__MINE__DSN='***': ")
    assert lines[1].startswith("invalid setting PLUGINS__MINE__INNER__TOKEN='***': ")
    assert lines[2].startswith("invalid setting PLUGINS__MINE__INNER__LABEL='ab': ")  # not a secret: shown
    assert lines[3].startswith("invalid setting PLUGINS__MINE__PLAIN=0: ")
    assert is_secret_field(Outer, ["inner", "token"]) and not is_secret_field(Outer, ["inner", "label"])


@pytest.mark.parametrize("entry", ['{"nme": "alice"}', "42", '{"name": ""}'])
def test_a_key_pasted_as_an_attribution_name_is_never_shown(monkeypatch, entry):
    # Before, a malformed entry named itself by its name: the pasted key, printed in full.
    monkeypatch.setenv("ATTRIBUTION__KEYS", f'{{"{PASTED_KEY}": {entry}}}')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "SECRETVALUE" not in message.upper()
    assert message.startswith("invalid setting ATTRIBUTION__KEYS__<not a key fingerprint>")


def test_a_fingerprint_names_its_key_in_either_case(tmp_path):
    config = tmp_path / "ccproxy.toml"
    config.write_text('[attribution.keys]\n"3F2A9C1B7D4E" = "ci"\n"90be41d07a22" = { name = "laptop" }\n')
    names = load_settings(config).attribution.key_names()
    assert names == {"3f2a9c1b7d4e": ("ci", None), "90be41d07a22": ("laptop", None)}


@pytest.mark.parametrize("name", ["\uff13f2a9c1b7d4e", "3f2a9c1b7d4\u212a", "3f2a9c1b7d4e\n", "3f2a9c1b7d4ef"])
def test_a_name_only_like_a_fingerprint_is_refused_and_not_shown(monkeypatch, name):
    # Full-width digits, the Kelvin sign (lower-cased: a plain k), a trailing newline, a digit too many.
    monkeypatch.setenv("ATTRIBUTION__KEYS", json.dumps({name: "ci"}))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "not a key fingerprint" in str(caught.value) and name not in str(caught.value)


def test_one_fingerprint_named_twice_in_two_cases_is_refused(tmp_path):
    config = tmp_path / "ccproxy.toml"
    config.write_text('[attribution.keys]\n"3F2A9C1B7D4E" = "ci"\n"3f2a9c1b7d4e" = "laptop"\n')
    with pytest.raises(SettingsError, match="fingerprint 3f2a9c1b7d4e is named twice"):
        load_settings(config)


def test_a_misspelt_key_alias_field_is_refused(tmp_path):
    config = tmp_path / "ccproxy.toml"
    config.write_text('[attribution.keys]\n"3f2a9c1b7d4e" = { name = "ci", projet = "backend" }\n')
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert str(caught.value) == "unknown key projet in ATTRIBUTION__KEYS__3F2A9C1B7D4E: did you mean project?"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("UPSTREAM__READ_TIMEOUT_SECONDS", "nan"),  # was "Input should be greater than 0"
        ("OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS", "inf"),  # was "less than or equal to 3600"
        ("OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS", "-inf"),
    ],
)
def test_a_bound_broken_by_nan_or_an_infinity_asks_for_a_finite_number(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid setting {variable}='{value}': give a finite number"


@pytest.mark.parametrize(
    "name",
    [
        "UPSTREAM__CONNECT_TIMEOUT_SECONDS",
        "UPSTREAM__READ_TIMEOUT_SECONDS",
        "SERVER__BODY_TIMEOUT_SECONDS",
        "OBSERVABILITY__PUSHGATEWAY_INTERVAL_SECONDS",
    ],
)
def test_an_infinite_time_is_refused_naming_the_setting(monkeypatch, name):
    # Before, an infinite connect timeout started cleanly and then failed every request with a 500.
    monkeypatch.setenv(name, "inf")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid setting {name}=inf: give a finite number"


def test_infinities_are_found_in_plugins_tables_too():
    class PluginTable(BaseModel):
        interval_seconds: float = Field(1.0, gt=0)

    class Bound(BaseModel):
        mine: PluginTable

    assert infinite_setting(Bound(mine=PluginTable(interval_seconds=2.5)), ("plugins",)) is None
    found = infinite_setting(Bound(mine=PluginTable(interval_seconds=float("inf"))), ("plugins",))
    assert found == "invalid setting PLUGINS__MINE__INTERVAL_SECONDS=inf: give a finite number"


def test_a_list_where_a_section_belongs_is_not_shown(monkeypatch):
    monkeypatch.setenv("UPSTREAM", '["SECRETVALUE123"]')  # a key in no recognisable shape
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("invalid setting UPSTREAM=(a list): ")


@pytest.mark.parametrize(
    ("setting", "value", "most"),
    [
        # Before, 1e10 started cleanly; the writer's wait then overflowed on every pass and nothing was written.
        *[("OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS", value, 3600) for value in ("1e10", "3601")],
        # Before, a million days killed the retention thread; a billion failed start-up naming no setting.
        *[("OBSERVABILITY__LOG_RETENTION_DAYS", value, 36500) for value in ("36501", "1000000", "1000000000")],
    ],
)
def test_a_flush_interval_over_an_hour_or_a_retention_over_a_century_is_refused_naming_it(
    monkeypatch, setting, value, most
):
    monkeypatch.setenv(setting, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"invalid setting {setting}='{value}': Input should be less than or equal to {most}"


@pytest.mark.parametrize("value", ["0MB", "1KB", "31.9MB"])
def test_a_duckdb_memory_cap_too_small_to_work_in_is_refused_naming_the_setting(monkeypatch, value):
    # Before, it passed validation and start-up failed with DuckDB's own lines, naming no setting.
    monkeypatch.setenv("OBSERVABILITY__DUCKDB_MEMORY_LIMIT", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"invalid setting OBSERVABILITY__DUCKDB_MEMORY_LIMIT='{value}': ")
    assert "must be at least 32MB" in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        # Before, each started: the typo trusted nobody (or the wrong machine), the port never matched a Host.
        ("SECURITY__TRUSTED_PROXIES", "127.0.0.l", "is not an IP address or network"),
        ("SECURITY__TRUSTED_PROXIES", "proxy.internal", "is not an IP address or network"),
        ("SECURITY__TRUSTED_PROXIES", "[1, 2]", "is not a JSON list of strings"),
        # A typo of an address or of a network: never read as the 65,536 hosts of 192.168.0.0/16.
        ("SECURITY__TRUSTED_PROXIES", "192.168.1.10/16", "no host bits set"),
        ("SECURITY__TRUSTED_PROXIES", "10.0.0.1,*", "give it alone"),
        ("SECURITY__ALLOWED_HOSTS", "ccproxy.example:8000", "is not a host name"),
        ("SECURITY__ALLOWED_HOSTS", "https://ccproxy.example", "is not a host name"),
    ],
)
def test_a_security_address_that_is_not_one_is_refused_naming_the_setting(monkeypatch, setting, value, named):
    monkeypatch.setenv(setting, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"invalid setting {setting}='{value}': ") and named in str(caught.value)


def test_security_address_lists_take_commas_or_a_json_list(monkeypatch):
    monkeypatch.setenv("SECURITY__TRUSTED_PROXIES", '["127.0.0.1", "10.0.0.0/8"]')
    monkeypatch.setenv("SECURITY__ALLOWED_HOSTS", "[::1], CCProxy.example.")
    security = load_settings().security
    assert security.trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    assert security.allowed_hosts == ["[::1]", "ccproxy.example"]


def test_a_duckdb_size_takes_any_case_and_a_bad_one_says_what_to_write(monkeypatch):
    from ccproxy_duckdb.settings import DuckDBSettings

    monkeypatch.setenv("OBSERVABILITY__DUCKDB_MEMORY_LIMIT", "512mb")
    load_settings()  # before: "String should match pattern '^\s*\d+...'"

    assert DuckDBSettings(duckdb_memory_limit="512mb").duckdb_memory_limit == "512MB"
    assert DuckDBSettings(duckdb_checkpoint_threshold="1 gib").duckdb_checkpoint_threshold == "1GiB"
    monkeypatch.setenv("OBSERVABILITY__DUCKDB_MEMORY_LIMIT", "1G")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "is not a size: write a number and a unit, such as 256MB or 1GiB" in str(caught.value)  # not a regex


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_duckdb_path_is_refused_by_name(monkeypatch, value):
    # Before, it became the working folder: "cannot open DuckDB file .: ... Is a directory", exit 1.
    monkeypatch.setenv("OBSERVABILITY__DUCKDB_PATH", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"invalid setting OBSERVABILITY__DUCKDB_PATH='{value}': ")
    assert "give the path of the DuckDB file" in str(caught.value)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("SERVER", "[" * 20_000 + "]" * 20_000),
        ("ATTRIBUTION__KEYS", '{"a":' * 10_000 + "1" + "}" * 10_000),
    ],
)
def test_a_setting_nested_too_deeply_is_refused_by_name(monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as refused:  # before: a RecursionError's traceback
        load_settings()
    assert str(refused.value) == f"{variable} nests lists or tables too deeply: {NESTING_FIX}"


def test_a_config_file_nested_too_deeply_is_refused_by_its_path(tmp_path):
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 5_000 + "]" * 5_000 + "\n")
    with pytest.raises(SettingsError) as refused:
        load_settings(config)
    assert str(refused.value) == f"config file {config} nests arrays or tables too deeply: {NESTING_FIX}"
