"""Settings: documented defaults, every source, precedence, and one-line errors."""

from __future__ import annotations

import time

import pytest

from ccproxy_core.errors import SettingsError
from ccproxy_core.runtime.settings_loader import load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch, tmp_path):
    """No real environment variable, .env or config file of the machine may leak in."""
    import os

    for name in list(os.environ):
        if name.split("__")[0] in {"SERVER", "UPSTREAM", "OBSERVABILITY", "SECURITY", "LOGGING", "PLUGINS"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("CCPROXY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


def test_documented_defaults():
    s = load_settings()
    obs = s.observability
    assert (
        obs.metrics_endpoint_enabled,
        obs.logs_endpoints_enabled,
        obs.dashboard_enabled,
        obs.logs_collection_enabled,
    ) == (False,) * 4
    assert obs.log_storage_backend == "duckdb"
    assert obs.duckdb_path == "~/.local/share/ccproxy/metrics.duckdb"
    assert obs.pushgateway_url is None
    assert (s.server.host, s.server.port) == ("127.0.0.1", 8000)
    assert s.upstream.anthropic_base_url == "https://api.anthropic.com"
    assert s.upstream.openai_base_url == "https://api.openai.com"
    assert s.security.auth_token is None


def test_precedence_cli_over_env_over_dotenv_over_file(monkeypatch, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[server]\nport = 1111\nhost = "10.0.0.1"\n[observability]\ndashboard_enabled = true\nduckdb_path = "/from/file"\n'
        '[upstream]\nopenai_base_url = "http://file"\n'
    )
    (tmp_path / ".env").write_text("SERVER__PORT=2222\nOBSERVABILITY__DUCKDB_PATH=/from/dotenv\n")
    monkeypatch.setenv("SERVER__PORT", "3333")
    s = load_settings(config, {"server": {"port": 4444}})
    assert s.server.port == 4444  # CLI
    assert s.server.host == "10.0.0.1"  # file, nothing above it
    assert s.observability.duckdb_path == "/from/dotenv"  # .env beats the file
    assert s.observability.dashboard_enabled is True
    assert s.upstream.openai_base_url == "http://file"
    assert load_settings(config).server.port == 3333  # env beats .env and file


def test_a_dotenv_line_that_cannot_be_read_stops_start_up_naming_the_file_and_line(tmp_path):
    # Before, python-dotenv skipped it with a warning naming no file, and the token written there did not apply.
    dotenv = tmp_path / ".env"
    dotenv.write_text('# the proxy\nexport SERVER__PORT=2222\n\nSECURITY__AUTH_TOKEN="unclosed\n')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"{dotenv.resolve()} line 4 cannot be read as NAME=value: fix or remove it"
    dotenv.write_text('# the proxy\nexport SERVER__PORT=2222\n\nSECURITY__AUTH_TOKEN="closed"\n')
    assert load_settings().server.port == 2222


def test_a_dotenv_line_naming_a_setting_without_a_value_stops_start_up(tmp_path):
    # Before: read as no value at all, so the auth token written there did not apply and /metrics was open.
    dotenv = tmp_path / ".env"
    dotenv.write_text("SERVER__PORT=2222\n\nSECURITY__AUTH_TOKEN\n")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"{dotenv.resolve()} line 3 names SECURITY__AUTH_TOKEN without a value: "
        "write SECURITY__AUTH_TOKEN=value, or remove the line"
    )


def test_a_dotenv_line_naming_what_the_environment_gives_or_no_setting_is_read_as_before(tmp_path, monkeypatch):
    # Docker's env files pass a bare name through from the environment; a name that is no setting is not ours.
    (tmp_path / ".env").write_text("DEBUG\nSERVER__PORT=2222\nSECURITY__AUTH_TOKEN\n")
    monkeypatch.setenv("SECURITY__AUTH_TOKEN", "from-the-environment")
    settings = load_settings()
    assert settings.server.port == 2222
    assert settings.security.auth_token is not None
    assert settings.security.auth_token.get_secret_value() == "from-the-environment"


def test_a_dotenv_that_is_a_folder_stops_start_up(tmp_path):
    (tmp_path / ".env").mkdir()  # before, ignored without a word
    with pytest.raises(SettingsError, match=r"\.env is a folder, not a \.env file of settings: rename or remove it"):
        load_settings()


def test_default_config_location_is_read(tmp_path):
    default = tmp_path / "xdg" / "ccproxy" / "config.toml"
    default.parent.mkdir(parents=True)
    default.write_text("[observability]\nmetrics_endpoint_enabled = true\n")
    assert load_settings().observability.metrics_endpoint_enabled is True


def test_plugins_disabled_is_a_comma_list(monkeypatch):
    monkeypatch.setenv("PLUGINS__DISABLED", "metrics, my_plugin")
    assert load_settings().plugins.disabled == ["metrics", "my_plugin"]


@pytest.mark.parametrize(
    "name, value, expected",
    [
        (
            "OBSERVABILITY__LOG_STORAGE_BACKEND",
            "sqlite",
            "invalid setting OBSERVABILITY__LOG_STORAGE_BACKEND='sqlite': Input should be 'duckdb', 'clickhouse' or 'none'",
        ),
        ("SERVER__PORT", "eighty", "invalid setting SERVER__PORT='eighty'"),
        (
            "OBSERVABILITY__METRICS_ENDPOINT_ENABLED",
            "maybe",
            "invalid setting OBSERVABILITY__METRICS_ENDPOINT_ENABLED='maybe'",
        ),
        ("UPSTREAM__ANTHROPIC_BASE_URL", "api.anthropic.com", "must start with http:// or https://"),
        (  # an endpoint's URL pasted for the base URL: before, accepted, and every request went to .../messages/v1/...
            "UPSTREAM__ANTHROPIC_BASE_URL",
            "https://gw.example/anthropic/V1/Messages/",
            "ends with an endpoint's path (/V1/Messages): give the base URL, such as https://gw.example/anthropic;",
        ),
        ("OBSERVABILITY__DUCKDB_MEMORY_LIMIT", "lots", "invalid setting OBSERVABILITY__DUCKDB_MEMORY_LIMIT='lots'"),
        (
            "OBSERVABILITY__DUCKDB_MEMORY_LIMIT",
            "99999999999GB",
            "invalid setting OBSERVABILITY__DUCKDB_MEMORY_LIMIT='99999999999GB': Value error, must be at most 1024TiB",
        ),
        ("OBSERVABILITY__DUCKDB_THREADS", "0", "invalid setting OBSERVABILITY__DUCKDB_THREADS='0'"),
        (
            "OBSERVABILITY__DUCKDB_CHECKPOINT_THRESHOLD",
            "-1MB",
            "invalid setting OBSERVABILITY__DUCKDB_CHECKPOINT_THRESHOLD='-1MB'",
        ),
        ("SERVER__HOST", "", "invalid setting SERVER__HOST=''"),
        ("SECURITY__ALLOWED_ORIGINS", "https://app.example/path", "no path"),
        (
            "UPSTREAM__ANTHROPIC_API_KEY",
            "sk-ant-api03-half\r\nx-injected: 1",
            "invalid setting UPSTREAM__ANTHROPIC_API_KEY='***': Value error, holds a control character",
        ),
        (
            "UPSTREAM__OPENAI_BASE_URL",
            "https://user:sk-secret@gateway.example/v1",
            "UPSTREAM__OPENAI_BASE_URL='https://***@gateway.example/v1': Value error, must not hold credentials "
            "(user:password@): put the key in UPSTREAM__OPENAI_API_KEY",
        ),
    ],
)
def test_a_bad_value_names_the_variable_and_what_is_allowed(monkeypatch, name, value, expected):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_a_huge_bad_value_is_cut_in_its_error_line_and_told_at_once(monkeypatch):
    monkeypatch.setenv("SERVER__PORT", "9" * 20_000 + "x")
    started = time.monotonic()
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert time.monotonic() - started < 5
    line = str(caught.value)
    assert line.startswith("invalid setting SERVER__PORT='999") and "... (20001 characters)" in line
    assert len(line) < 400


def test_whitespace_around_a_configured_key_is_dropped(monkeypatch):
    """A key read from a file (a Kubernetes secret) often ends in a newline; no key holds whitespace."""
    monkeypatch.setenv("UPSTREAM__ANTHROPIC_API_KEY", "sk-ant-api03-from-a-file\n")
    monkeypatch.setenv("UPSTREAM__OPENAI_API_KEY", "  \n")
    upstream = load_settings().upstream
    assert upstream.anthropic_api_key is not None
    assert upstream.anthropic_api_key.get_secret_value() == "sk-ant-api03-from-a-file"
    assert upstream.openai_api_key is None


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_a_bad_value_from_the_config_file_is_named_by_its_place_there(monkeypatch, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[server]\nport = "abc"\n')
    with pytest.raises(SettingsError, match=r"SERVER__PORT='abc' \(server\.port in .*config\.toml\): "):
        load_settings(config)
    monkeypatch.setenv("SERVER__PORT", "xyz")  # set there, it is named as it was given
    with pytest.raises(SettingsError, match=r"SERVER__PORT='xyz': "):
        load_settings(config)
    monkeypatch.delenv("SERVER__PORT")
    (tmp_path / ".env").write_text("SERVER__PORT=def\n")  # nor is a value from .env blamed on the file
    with pytest.raises(SettingsError, match=r"SERVER__PORT='def': "):
        load_settings(config)


def test_a_key_pasted_in_place_of_a_fingerprint_is_never_shown_as_a_place_in_the_file(tmp_path):
    key = "sk-proj-REALSECRETKEYPASTEDHERE0123456789"
    config = tmp_path / "config.toml"
    for entry in ('""', "123", '{name = "alice", project = ""}'):
        config.write_text(f'[attribution.keys]\n"{key}" = {entry}\n')
        with pytest.raises(SettingsError) as refused:
            load_settings(config)
        assert key not in str(refused.value) and "REALSECRET" not in str(refused.value)


def test_the_documented_config_file_loads(tmp_path):
    from pathlib import Path

    guide = (Path(__file__).parents[1] / "docs" / "configuration.md").read_text()
    config = tmp_path / "documented.toml"
    config.write_text(guide.split("```toml\n", 1)[1].split("```", 1)[0])
    s = load_settings(config)
    assert s.observability.dashboard_enabled and s.observability.log_retention_days == 30
    assert s.plugins.disabled == ["pushgateway"] and s.security.auth_token.get_secret_value() == "change-me"


@pytest.mark.parametrize(
    "tables, expected",
    [
        (
            '[[budgets]]\nname = "alpha"\nscope = "all"\nlimit_usd = 1\n\n'
            '[[budgets]]\nname = "alpha-only"\nscop = "project:alpha"\nlimit_usd = 5\n',
            "unknown key budgets.1.scop (budget 'alpha-only'): did you mean scope?",
        ),
        (
            '[[budgets]]\nname = "team-daily"\nlimit = 5\n',
            "invalid setting budgets.0.limit_usd=(missing) (budget 'team-daily'): Field required\n"
            "unknown key budgets.0.limit (budget 'team-daily'): did you mean limit_usd?",
        ),
        (
            '[[budgets]]\nname = "team-daily"\nlimit_usd = 5\nnotify = "slack"\n',
            "unknown key budgets.0.notify (budget 'team-daily'): a budget's keys are "
            "name, scope, period, timezone, limit_usd, action",
        ),
        (
            '[[budgets]]\nname = "team-daily"\nlimit_usd = -5\n',
            "invalid setting budgets.0.limit_usd=-5 (budget 'team-daily'): Input should be greater than 0",
        ),
        (
            '[[budgets]]\nname = "ok"\nlimit_usd = 1\n\n[[budgets]]\nname = "team-daily"\nscope = "everyone"\nlimit_usd = 5\n',
            "invalid setting budgets.1.scope='everyone' (budget 'team-daily'): Value error, must be all, "
            "project:<name>, api_key:<id>, session:<id> or model:<name>",
        ),
        (  # before, accepted: the key was shown in the start-up log, /metrics and alerts, and the budget covered nothing
            '[[budgets]]\nname = "k"\nscope = "api_key:sk-ant-api03-PASTEDKEY0123456789abc"\nlimit_usd = 5\n',
            "invalid setting budgets.0.scope='api_key:sk-***' (budget 'k'): Value error, api_key: takes the key's "
            "fingerprint as `ccproxy key-id` prints it, never the key",
        ),
        (
            '[[budgets]]\nname = "p"\nscope = "project:x\\u001b[2J"\nlimit_usd = 5\n',
            "invalid setting budgets.0.scope='project:x\\x1b[2J' (budget 'p'): Value error, must be printable: "
            "no control characters",
        ),
        (  # before, accepted as 1 USD
            '[[budgets]]\nname = "b"\nlimit_usd = true\n',
            "invalid setting budgets.0.limit_usd=True (budget 'b'): Input should be a valid number",
        ),
        (
            '[[budgets]]\nname = "b"\nlimit_usd = nan\n',
            "invalid setting budgets.0.limit_usd=nan (budget 'b'): Value error, must be a finite number of dollars",
        ),
        (  # before, accepted: what was left no longer fit the ledger's arithmetic, and no budget was enforced
            '[[budgets]]\nname = "b"\nlimit_usd = 1e25\n',
            "invalid setting budgets.0.limit_usd=1e+25 (budget 'b'): Value error, must be from 0.000001 to "
            "1000000000000 (a trillion) dollars",
        ),
        (  # before, accepted: refused as "spent 0.006 of its 0.00 USD"
            '[[budgets]]\nname = "b"\nlimit_usd = 1e-7\n',
            "invalid setting budgets.0.limit_usd=1e-07 (budget 'b'): Value error, must be from 0.000001 to "
            "1000000000000 (a trillion) dollars",
        ),
        (  # before, accepted: a project a header could never carry
            '[[budgets]]\nname = "p"\nscope = "project: alpha"\nlimit_usd = 5\n',
            "invalid setting budgets.0.scope='project: alpha' (budget 'p'): Value error, must not begin or end "
            "with a space",
        ),
        (  # before, accepted: a project longer than a request's is kept to
            '[[budgets]]\nname = "p"\nscope = "project:' + "p" * 129 + '"\nlimit_usd = 5\n',
            f"invalid setting budgets.0.scope='project:{'p' * 129}' (budget 'p'): Value error, names a project "
            "longer than the 128 characters a request's project is kept to: it could never match",
        ),
        (  # before, accepted: the host's own zone
            '[[budgets]]\nname = "t"\ntimezone = "localtime"\nlimit_usd = 5\n',
            "invalid setting budgets.0.timezone='localtime' (budget 't'): Value error, must be an IANA time zone "
            "such as UTC or Europe/Paris, not the host's localtime",
        ),
        (
            '[[budgets]]\nscope = "all"\nlimit_usd = 5\n',
            "invalid setting budgets.0.name=(missing) (a budget without a name): Field required",
        ),
        (
            '[[budgets]]\nname = "daily"\nlimit_usd = 1\n\n[[budgets]]\nname = "daily"\nlimit_usd = 2\n',
            "invalid setting budgets.1.name='daily' (budget 'daily'): Value error, an earlier budget has this name: "
            "every budget needs a name of its own",
        ),
        (
            '[budgets]\nname = "daily"\nlimit_usd = 1\n',
            "invalid setting budgets: Input should be a valid list: write each budget as a [[budgets]] table "
            "of the config file (double brackets), or BUDGETS as a JSON list of objects",
        ),
    ],
)
def test_a_bad_budget_table_is_named_by_its_index_and_name(tmp_path, tables, expected):
    config = tmp_path / "config.toml"
    config.write_text(tables)
    with pytest.raises(SettingsError) as caught:
        load_settings(config)
    assert str(caught.value) == expected


def test_a_bad_budget_in_the_environment_is_named_too(monkeypatch):
    monkeypatch.setenv("BUDGETS", '[{"name": "nightly", "limit_usd": 2, "scoop": "model:gpt-4o"}]')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == "unknown key budgets.0.scoop (budget 'nightly'): did you mean scope?"


def test_a_config_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    config = tmp_path / "config.toml"  # as Notepad saves UTF-8
    config.write_bytes(b"\xef\xbb\xbf[server]\nport = 9123\n[observability]\nduckdb_path = 'x.duckdb'\n")
    settings = load_settings(config)
    assert settings.server.port == 9123 and settings.observability.duckdb_path == "x.duckdb"
