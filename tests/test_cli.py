"""The ccproxy command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

import ccproxy_core
from ccproxy_core.testing import free_port

CCPROXY = [sys.executable, "-m", "ccproxy_core"]


def run(*args: str, env: dict | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if "__" not in k}
    environment.update(env or {})
    return subprocess.run([*CCPROXY, *args], capture_output=True, text=True, env=environment, timeout=120, cwd=cwd)


def test_version():
    result = run("--version")
    assert result.returncode == 0 and ccproxy_core.__version__ in result.stdout


def test_plugins_list_json_shows_builtins_with_reasons():
    result = run(
        "plugins", "list", "--json", env={"OBSERVABILITY__DASHBOARD_ENABLED": "true", "PLUGINS__DISABLED": "metrics"}
    )
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["dashboard"]["enabled"] is True and plugins["dashboard"]["distribution"] == "ccproxy-observability"
    assert plugins["dashboard"]["version"] == ccproxy_core.__version__
    assert plugins["metrics"]["reason"] == "disabled by name (PLUGINS__DISABLED)"
    assert plugins["duckdb"]["reason"] == "OBSERVABILITY__LOGS_COLLECTION_ENABLED=false"


def test_plugins_list_table():
    result = run("plugins", "list")
    assert result.returncode == 0
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "DISTRIBUTION", "HOOKS", "STATUS"]
    assert any(
        row.startswith("logs_api") and "disabled: OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=false" in row for row in rows
    )


def test_bad_setting_exits_2_with_one_line():
    result = run("config", "show", env={"SERVER__PORT": "not-a-port"})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: invalid setting SERVER__PORT='not-a-port': Input should be a valid integer, unable to parse string as an integer"
    )


def test_a_misspelt_budget_key_exits_2_naming_the_budget(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[[budgets]]\nname = "alpha-daily"\nscop = "project:alpha"\nlimit_usd = 5\n')
    result = run("config", "show", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: unknown key budgets.0.scop (budget 'alpha-daily'): did you mean scope?"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATTRIBUTION__KEYS", "not json"),
        ("ATTRIBUTION__KEYS", '{"3f2a9c1b7d4e": "alice-laptop"'),
        ("BUDGETS", '[{"name": "team", "limit_usd": 5}'),
        ("SERVER", "{port: 8080}"),
    ],
)
def test_a_json_setting_that_is_not_json_exits_2_with_one_line_naming_it(variable, value):
    result = run("config", "show", env={variable: value})
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"invalid setting {variable}: not valid JSON" in result.stderr and "write it as a JSON" in result.stderr


def test_a_json_setting_in_the_env_file_that_is_not_json_is_named_with_the_file(tmp_path):
    (tmp_path / ".env").write_text("ATTRIBUTION__KEYS={oops\n")
    result = run("config", "show", env={"HOME": str(tmp_path)}, cwd=str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: invalid setting ATTRIBUTION__KEYS (in .env): not valid JSON"), result.stderr
    assert "Traceback" not in result.stderr


def test_config_show_masks_secrets():
    webhook = "https://hooks.slack.com/services/T000/B000/SeCrEt7"  # its path is the credential
    result = run(
        "config",
        "show",
        env={
            "SECURITY__AUTH_TOKEN": "super-secret-token",
            "UPSTREAM__OPENAI_API_KEY": "sk-very-secret",
            "OBSERVABILITY__BUDGETS_WEBHOOK_URL": webhook,
        },
    )
    assert result.returncode == 0
    assert "super-secret-token" not in result.stdout and "sk-very-secret" not in result.stdout
    assert "SeCrEt7" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["security"]["auth_token"] == "**********"


def test_config_show_masks_a_plugins_credentials_whatever_it_calls_them():
    from ccproxy_core.runtime.cli import _masked

    plugin = {  # a third-party plugin's settings as `config show` has them: plain strings
        "endpoint": "https://api.honeycomb.example",
        "webhook_url": "https://hooks.slack.com/services/T0/B0/HOOKSECRET",
        "passphrase": "PASSSECRET",
        "private_key_pem": "KEYSECRET",
        "headers": {"x-api-key": "HEADERSECRET", "Authorization": "Basic QkFTSUNTRUNSRVQ=", "Cookie": "COOKIESECRET"},
    }
    shown = json.dumps(_masked({"plugins": {"honeycomb": plugin}}))
    # Before: each of these in clear.
    for secret in ("HOOKSECRET", "PASSSECRET", "KEYSECRET", "HEADERSECRET", "QkFTSUNTRUNSRVQ=", "COOKIESECRET"):
        assert secret not in shown
    assert "https://api.honeycomb.example" in shown


def test_plugins_list_lists_every_plugin_under_strict_mode_broken_ones_too(tmp_path):
    site = tmp_path / "site"
    (site / "broken_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "broken_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n"
    )
    (site / "broken_plugin-1.0.dist-info" / "entry_points.txt").write_text("[ccproxy]\nbroken = broken_plugin\n")
    (site / "broken_plugin.py").write_text("raise ImportError('broken on purpose')\n")
    result = run("plugins", "list", "--json", env={"PYTHONPATH": str(site), "PLUGINS__STRICT": "true"})
    # Before: exit 1 with the first broken plugin's error, and no list.
    assert result.returncode == 0, result.stderr
    listed = {plugin["name"]: plugin for plugin in json.loads(result.stdout)}
    assert listed["broken"]["enabled"] is False and "broken on purpose" in listed["broken"]["error"]
    assert listed["metrics"]["distribution"]


def test_serve_with_bad_storage_path_fails_with_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    env = {
        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
        "OBSERVABILITY__DUCKDB_PATH": str(blocker / "x.duckdb"),
        "SERVER__PORT": "0",
    }
    result = run("serve", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(blocker / "x.duckdb") in result.stderr


def test_demo_once_serves_records_and_prints_urls(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("demo", "--once", "--port", str(port), "--requests", "6")
    assert result.returncode == 0, result.stdout + result.stderr
    for path in ("/metrics", "/logs/query", "/dashboard"):
        assert f"http://127.0.0.1:{port}{path}" in result.stdout
    assert "recorded   6 rows" in result.stdout


def test_demo_once_on_port_0_prints_the_port_it_got_and_exits(tmp_path):
    result = run(
        "demo", "--once", "--port", "0", "--requests", "3", env={"HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "127.0.0.1:0/" not in result.stdout
    assert "/dashboard" in result.stdout and "recorded   3 rows" in result.stdout
    assert not list(tmp_path.glob("ccproxy-demo-*"))  # before: a folder with the demo's DuckDB file, every run


def test_ctrl_c_stops_the_demo_cleanly_with_exit_status_0(tmp_path):
    environment = {k: v for k, v in os.environ.items() if "__" not in k} | {"HOME": str(tmp_path)}
    demo = subprocess.Popen(
        [*CCPROXY, "demo", "--port", "0", "--requests", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert demo.stdout is not None
        for line in demo.stdout:  # the URLs are printed once it serves
            if "/dashboard" in line:
                break
        demo.send_signal(signal.SIGINT)
        _, errors = demo.communicate(timeout=60)
    finally:
        demo.kill()
    assert demo.returncode == 0, errors
    assert "Aborted" not in errors and "Traceback" not in errors


def test_demo_with_a_bad_setting_exits_2_with_one_line_naming_it(tmp_path):
    result = run("demo", "--once", "--port", "0", env={"HOME": str(tmp_path), "OBSERVABILITY__DUCKDB_BATCH": "1"})
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "unknown setting OBSERVABILITY__DUCKDB_BATCH" in result.stderr


def test_a_config_file_that_cannot_be_read_is_one_line_naming_it(tmp_path):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[server]\n")
    for args, env, expected in [
        (("config", "show", "--config", str(binary)), {}, "is not UTF-8 text"),
        (("config", "show"), {"CCPROXY_CONFIG": str(tmp_path)}, "CCPROXY_CONFIG"),
        (("config", "show"), {"CCPROXY_CONFIG": str(tmp_path / "missing.toml")}, "CCPROXY_CONFIG"),
    ]:
        result = run(*args, env=env)
        assert result.returncode == 2 and expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("mock-upstream", "--port", "70000"),
        ("mock-upstream", "--latency-ms", "-5"),
        ("mock-upstream", "--delta-count", "-3"),
        ("mock-upstream", "--latency-ms", "700000"),
        ("mock-upstream", "--delta-interval-ms", "700000"),
        ("mock-upstream", "--delta-count", "200000"),
        ("serve", "--mock-upstream", "70000"),
        ("serve", "--port", "-1"),
        ("demo", "--requests", "-5"),
        ("demo", "--requests", "0"),
    ],
)
def test_out_of_range_numbers_on_the_command_line_are_refused_by_name(args):
    result = run(*args)
    assert result.returncode == 2 and args[-2] in result.stderr and "Traceback" not in result.stderr


def test_the_mock_upstreams_ranges_on_the_command_line_are_the_mocks_own():
    from ccproxy_core.runtime.cli import MOCK_DELTA_COUNT, MOCK_MILLISECONDS
    from ccproxy_core.testing.mock_upstream.options import MAX_DELTA_COUNT, MAX_MILLISECONDS

    assert (MOCK_MILLISECONDS.max, MOCK_DELTA_COUNT.max) == (MAX_MILLISECONDS, MAX_DELTA_COUNT)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_names_the_setting_to_change(tmp_path, workers):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        store = tmp_path / "logs" / "ccproxy.duckdb"
        collecting = {"OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true", "OBSERVABILITY__DUCKDB_PATH": str(store)}
        result = run("serve", "--port", str(port), "--workers", workers, env={"HOME": str(tmp_path), **collecting})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert (
        f"cannot listen on 127.0.0.1 port {port} (Address already in use): stop what uses it, "
        "or set SERVER__PORT (or --port) to a free port" in result.stderr
    ), result.stderr
    assert result.stderr.count("cannot listen on") == 1
    assert not store.parent.exists()  # before, the plugins started first: the DuckDB file was made


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_host_that_is_not_an_address_of_this_machine_names_the_host_setting(tmp_path, workers):
    result = run("serve", "--host", "192.0.2.1", "--port", "0", "--workers", workers, env={"HOME": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "192.0.2.1: it is not an address of this machine: set SERVER__HOST (or --host)" in result.stderr
    assert "SERVER__PORT" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("command", "host", "setting"),
    [("serve", "ccproxy..lan", "SERVER__HOST (or --host)"), ("mock-upstream", "." + "a" * 64, "--host")],
)
def test_a_host_no_resolver_can_look_up_is_one_line_naming_the_setting(tmp_path, command, host, setting):
    # Before: two tracebacks ending in "UnicodeError: encoding with 'idna' codec failed".
    result = run(command, "--host", host, "--port", "0", env={"HOME": str(tmp_path)})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"{host}: it is not an address of this machine: set {setting}" in result.stderr


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("serve", "--mock-upstream"), "--mock-upstream"),
        (("mock-upstream", "--port"), "--port"),
        (("demo", "--once", "--port"), "--port"),
    ],
)
def test_a_mock_upstream_or_demo_port_in_use_is_one_line_naming_the_option(tmp_path, args, option):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run(*args, str(port), env={"HOME": str(tmp_path)})
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"port {port} (Address already in use)" in result.stderr and f"set {option} to a free port" in result.stderr


@pytest.mark.parametrize("from_env", [False, True])
def test_the_mock_and_the_proxy_on_one_port_is_one_line_naming_both(tmp_path, from_env):
    # Before: "cannot listen on ... (Address already in use)", blaming a port the mock itself held.
    port = free_port()
    args, env = ("serve", "--mock-upstream", str(port)), {"HOME": str(tmp_path)}
    if from_env:
        env["SERVER__PORT"] = str(port)
    else:
        args += ("--port", str(port))
    result = run(*args, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == (
        f"error: --mock-upstream and the proxy (SERVER__PORT or --port) both ask for port {port}: "
        "give the mock another port"
    )
