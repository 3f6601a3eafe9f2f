"""``ccproxy report``: from the DuckDB file when no server holds it, else from the server's API."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import duckdb
import pytest
from click.testing import CliRunner
from rich.console import Console

from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.runtime.cli import main
from ccproxy_core.runtime.report.build import build_rows, merge_periods, period_of, totals
from ccproxy_core.runtime.report.tables import compact, money, render
from ccproxy_duckdb.schema import MIGRATIONS
from ccproxy_duckdb.settings import DuckDBSettings
from ccproxy_duckdb.store import DuckDBLogStore

from .test_attribution_integration import ALICE_KEY, CODEX_KEY, claude_code_request, codex_request, rows, start

CCPROXY = str(Path(sys.executable).parent / "ccproxy")


def run_report(config: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "80", "CCPROXY_CONFIG": str(config)}
    env = {k: v for k, v in env.items() if not k.startswith(("OBSERVABILITY__", "SERVER__", "SECURITY__"))}
    return subprocess.run([CCPROXY, "report", *args], capture_output=True, text=True, env=env, timeout=120)


def write_config(tmp_path: Path, port: int) -> Path:
    """The report's configuration: the server's port and file, and the key name the server is given."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\nport = {port}\n[observability]\nduckdb_path = "{tmp_path / "ccproxy.duckdb"}"\n'
        f'[attribution.keys]\n"{key_fingerprint(ALICE_KEY)}" = {{name = "alice-laptop"}}\n'
    )
    return config


def fill(proxy_factory) -> tuple[object, str, str]:
    proxy = start(proxy_factory)
    claude_session, codex_session = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(3):
        claude_code_request(proxy.url, claude_session)
    codex_request(proxy.url, codex_session)
    return proxy, claude_session, codex_session


def test_reports_read_the_server_api_while_it_holds_the_file_then_the_file(proxy_factory, tmp_path):
    proxy, claude_session, codex_session = fill(proxy_factory)
    stored = rows(proxy.url, 4)
    config = write_config(tmp_path, int(proxy.url.rsplit(":", 1)[1]))
    from_api = run_report(config, "session", "--json")
    assert from_api.returncode == 0, from_api.stderr
    api = json.loads(from_api.stdout)
    assert api["source"] == "api"
    sessions = {row["session_id"]: row for row in api["rows"]}
    assert sessions[claude_session]["requests"] == 3 and sessions[codex_session]["client_name"] == "codex"
    claude_cost = sum(r["cost_usd"] for r in stored if r["session_id"] == claude_session)
    assert abs(sessions[claude_session]["cost_usd"] - claude_cost) < 1e-9 and claude_cost > 0

    proxy.stop()
    from_file = run_report(config, "session", "--json")
    assert from_file.returncode == 0, from_file.stderr
    file_report = json.loads(from_file.stdout)
    assert file_report["source"] == "file" and file_report["rows"] == api["rows"]

    table = run_report(config, "session", "--breakdown", "model")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(line.startswith(claude_session[:7]) and "webshop" in line and "claude-code" in line for line in lines)
    assert any(line.startswith("  claude-sonn") for line in lines), table.stdout
    assert any(line.startswith("  gpt-4o-mini") for line in lines), table.stdout
    total = next(line for line in lines if line.startswith("Total"))
    assert money(sum(r["cost_usd"] for r in stored)) in total


def report_in_process(config: Path, *args: str):
    """The same command in this process (the file is free once the server stopped): quicker than a subprocess."""
    return CliRunner(env={"COLUMNS": "80"}).invoke(main, ["report", *args, "--config", str(config)])


def test_each_report_kind_fits_80_columns_and_sums_to_the_total(proxy_factory, tmp_path):
    proxy, _, _ = fill(proxy_factory)
    stored = rows(proxy.url, 4)
    proxy.stop()
    config = write_config(tmp_path, 1)
    for kind in ("daily", "weekly", "monthly", "project", "model", "key", "client"):
        answer = report_in_process(config, kind, "--json", "--breakdown", "model")
        assert answer.exit_code == 0, answer.output
        report = json.loads(answer.output)
        assert report["totals"]["requests"] == 4, kind
        assert abs(report["totals"]["cost_usd"] - sum(r["cost_usd"] for r in stored)) < 1e-9
        table = report_in_process(config, kind, "--breakdown", "model")
        assert max(len(line) for line in table.output.splitlines()) <= 80, table.output
        assert "claude-sonnet-4-5" in table.output and "Total" in table.output
    projects = json.loads(report_in_process(config, "project", "--json").output)["rows"]
    assert [(row["key"], row["requests"]) for row in projects] == [("webshop", 3), (None, 1)]
    keys = json.loads(report_in_process(config, "key", "--json").output)["rows"]
    assert [(row["key"], row["requests"]) for row in keys] == [("alice-laptop", 3), (key_fingerprint(CODEX_KEY), 1)]
    empty = json.loads(
        report_in_process(config, "daily", "--json", "--since", "2001-01-01", "--until", "2001-01-31").output
    )
    assert empty["rows"] == [] and empty["totals"]["requests"] == 0


def test_report_errors_name_the_fix(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[observability]\nduckdb_path = "{tmp_path / "missing.duckdb"}"\n')
    missing = run_report(config, "daily")
    assert missing.returncode == 2 and "OBSERVABILITY__DUCKDB_PATH" in missing.stderr
    backwards = run_report(config, "daily", "--since", "2025-02-01", "--until", "2025-01-01")
    assert backwards.returncode == 2 and "--since" in backwards.stderr
    garbage = run_report(config, "daily", "--since", "yesterday")
    assert garbage.returncode == 2 and "2025-01-31" in garbage.stderr
    unreachable = run_report(config, "daily", "--url", "http://127.0.0.1:1")
    assert unreachable.returncode == 2 and "--url" in unreachable.stderr
    for url in ("notaurl", "http://me:hunter2pw@127.0.0.1:1", "http://127.0.0.1:1/?token=hunter2q"):
        refused = report_in_process(config, "daily", "--url", url)
        assert refused.exit_code == 2 and "--url" in refused.output, url
        assert "hunter2" not in refused.output and "Traceback" not in refused.output


class NotCcproxy(BaseHTTPRequestHandler):
    """A server that answers JSON, as a provider or an SDK's base URL would, noting what it was asked."""

    asked: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self):
        NotCcproxy.asked.append((self.path, self.headers.get("authorization")))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"object": "list", "data": []}')

    def log_message(self, *args):
        pass


@pytest.fixture
def not_ccproxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotCcproxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    NotCcproxy.asked = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_report_refuses_the_sdks_base_url_which_would_send_its_token_to_the_provider(tmp_path, not_ccproxy):
    config = tmp_path / "config.toml"
    config.write_text('[security]\nauth_token = "report-token-0123456789abcdef"\n')
    for url in (f"{not_ccproxy}/v1", f"{not_ccproxy}/api/v1/", "file:///etc/passwd"):
        refused = report_in_process(config, "daily", "--url", url)
        assert refused.exit_code == 2 and "--url" in refused.output, (url, refused.output)
    assert NotCcproxy.asked == []  # the token went nowhere
    behind_a_prefix = report_in_process(config, "daily", "--url", f"{not_ccproxy}/api")  # a reverse proxy's mount
    assert behind_a_prefix.exit_code == 2 and "did not answer as ccproxy's /logs API does" in behind_a_prefix.output
    assert [path.split("?")[0] for path, _ in NotCcproxy.asked] == ["/api/logs/query"]


def test_report_refuses_credentials_in_its_url_naming_the_setting_to_use_and_never_printing_them(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("")
    refused = report_in_process(config, "daily", "--url", "http://admin:hunter2secret@127.0.0.1:9")
    # Before: "cannot read ccproxy at http://***@127.0.0.1:9: <urlopen error [Errno -2] Name or service not known>".
    assert refused.exit_code == 2 and "must not hold credentials" in refused.output
    assert "SECURITY__AUTH_TOKEN" in refused.output and "hunter2secret" not in refused.output


def test_report_names_a_server_that_is_not_ccproxy(tmp_path, not_ccproxy):
    config = tmp_path / "config.toml"
    config.write_text("")
    answer = report_in_process(config, "daily", "--url", not_ccproxy)
    assert answer.exit_code == 2 and "did not answer as ccproxy's /logs API does" in answer.output
    assert "Traceback" not in answer.output


def daily_report_of(path: Path):
    """The daily report, in process, of the DuckDB file at ``path`` (named in a config file beside it)."""
    config = path.parent / "config.toml"
    config.write_text(f'[observability]\nduckdb_path = "{path}"\n')
    return report_in_process(config, "daily")


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("CREATE TABLE events (id INTEGER)", "holds no ccproxy access records"),
        ("CREATE TABLE access_logs (request_id VARCHAR, session_id VARCHAR)", "holds no ccproxy access records"),
        (MIGRATIONS[0].statements[0], "predates columns this ccproxy reads: start ccproxy once (it migrates the file)"),
    ],
    ids=["other-tables", "foreign-access_logs", "older-ccproxy"],
)
def test_another_programs_file_is_refused_and_only_an_older_ccproxy_file_is_sent_to_be_migrated(
    tmp_path, statement, expected
):
    path = tmp_path / "some.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute(statement)
    answer = daily_report_of(path)
    assert answer.exit_code == 2 and answer.output.startswith(f"error: {path} {expected}"), answer.output
    assert "Traceback" not in answer.output and len(answer.output.splitlines()) == 1


def test_a_file_an_earlier_migration_left_without_priced_flags_is_sent_to_be_mended(tmp_path):
    # Before, read as it was: every such row showed as of unknown cost, its cost in the total all the same.
    path = tmp_path / "ccproxy.duckdb"
    DuckDBLogStore.open(DuckDBSettings(duckdb_path=str(path))).close()
    with duckdb.connect(str(path)) as connection:
        connection.execute(
            "INSERT INTO access_logs (request_id, \"timestamp\", cost_usd) VALUES ('old-1', now(), 0.01)"
        )
    answer = daily_report_of(path)
    assert answer.exit_code == 2, answer.output
    assert answer.output == (
        f"error: {path} has rows an earlier ccproxy left without their priced flag: start ccproxy once (it mends "
        "the file), then run the report again\n"
    )


def test_an_sqlite_file_is_refused_without_asking_duckdb_to_fetch_an_extension(tmp_path):
    path = tmp_path / "some.duckdb"
    with contextlib.closing(sqlite3.connect(path)) as other:
        other.execute("CREATE TABLE access_logs (request_id TEXT)")
        other.commit()
    answer = daily_report_of(path)
    assert answer.exit_code == 2, answer.output
    assert answer.output == (
        f"error: cannot read {path}: it is an SQLite database, not a DuckDB file; "
        "set OBSERVABILITY__DUCKDB_PATH to ccproxy's file\n"
    )


def test_a_held_file_is_named_as_in_use_when_the_configured_server_does_not_answer(tmp_path):
    config = write_config(tmp_path, 1)  # nothing listens on port 1
    path = tmp_path / "ccproxy.duckdb"
    holding = f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('held', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", holding], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"  # as a serving ccproxy does
        answer = run_report(config, "daily")
    finally:
        holder.kill()
        holder.wait()
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    assert "cannot read ccproxy at http://127.0.0.1:1" in answer.stderr, answer.stderr
    assert f"{path} is in use by another process (PID {holder.pid})" in answer.stderr
    assert "pass --url http://HOST:PORT of the ccproxy that holds it" in answer.stderr


def test_times_at_the_edges_of_the_calendar_are_refused_by_name(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[observability]\nduckdb_path = "{tmp_path / "missing.duckdb"}"\n')
    for option, value in (
        ("--until", "9999-12-31"),  # the whole day ends in the year 10000
        ("--until", "0001-01-01T00:00:00+05:00"),
        ("--since", "9999-12-31T23:00:00-05:00"),
    ):
        refused = run_report(config, "daily", option, value)
        assert refused.returncode == 2 and option in refused.stderr and "9999" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    no_room = run_report(config, "monthly", "--until", "0001-01-01")
    assert no_room.returncode == 2 and "--since" in no_room.stderr and "Traceback" not in no_room.stderr


def test_periods_and_compact_numbers():
    assert [period_of("2025-01-31", "weekly"), period_of("2025-01-31", "monthly")] == ["2025-W05", "2025-01"]
    day = {
        "requests": 1,
        "errors": 0,
        "cost_usd": 0.5,
        "tokens": {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0, "total": 3},
    }
    weeks = merge_periods(
        [{**day, "key": "2025-01-27"}, {**day, "key": "2025-02-02"}, {**day, "key": "2025-02-03"}], "weekly"
    )
    assert [(w["key"], w["requests"], w["cost_usd"]) for w in weeks] == [("2025-W05", 2, 1.0), ("2025-W06", 1, 0.5)]
    assert [compact(99_999), compact(1_234_567), compact(4_560_000_000)] == ["99,999", "1.23M", "4.56B"]
    assert [compact(9 * 10**12), compact(9 * 10**15)] == ["9.00T", "9.0e+15"]  # before: 9000.00B, 9000000.00B


def test_totals_and_periods_add_money_exactly():
    tokens = {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0, "total": 3}
    costs = [0.1, 0.2, 1051.268910825]  # as floats these add up to 1051.5689108249999
    days = [
        {"key": f"2025-01-0{n}", "requests": 1, "errors": 0, "cost_usd": cost, "unpriced_requests": 0, "tokens": tokens}
        for n, cost in enumerate(costs, start=6)
    ]
    assert totals(days)["cost_usd"] == 1051.568910825
    (week,) = merge_periods(days, "weekly")
    assert week["cost_usd"] == 1051.568910825 and isinstance(week["cost_usd"], float)
    assert totals(days[:2])["cost_usd"] == 0.3


class DaysOf:
    """A report source holding some days' groups, as the store or the API gives them."""

    def __init__(self, days):
        self.days = days

    def groups(self, start, end, grouping):
        return [dict(day) for day in self.days]

    def sessions(self, start, end, limit):
        return []

    def close(self):
        pass


def test_rows_whose_requests_have_no_known_price_show_an_unknown_cost_not_zero():
    tokens = {"input": 1, "output": 2, "cache_read": 0, "cache_write": 0, "total": 3}
    unknown = {"requests": 2, "errors": 0, "cost_usd": 0.0, "unpriced_requests": 2, "tokens": tokens}
    from_api = {**unknown, "cost_usd": None}  # the logs API already says None
    priced = {**unknown, "cost_usd": 0.25, "unpriced_requests": 1}
    days = [{**unknown, "key": "2025-01-06"}, {**from_api, "key": "2025-01-07"}, {**priced, "key": "2025-01-13"}]
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 31, tzinfo=UTC)
    weeks = build_rows(DaysOf(days), "weekly", start, end, None, 10)
    assert [(w["key"], w["cost_usd"], w["unpriced_requests"]) for w in weeks] == [
        ("2025-W02", None, 4),
        ("2025-W03", 0.25, 1),
    ]
    assert (totals(weeks)["cost_usd"], totals(weeks)["unpriced_requests"]) == (0.25, 5)
    assert totals(weeks[:1])["cost_usd"] is None and money(None) == "unknown"
    assert [row["cost_usd"] for row in build_rows(DaysOf(days), "daily", start, end, None, 10)] == [None, None, 0.25]
    console = Console(width=100, record=True)
    render(console, "weekly", weeks, "Weekly")
    assert "5 of 6 requests have no known cost" in " ".join(console.export_text().split())


def test_key_id_prints_the_fingerprint_from_stdin(tmp_path):
    config = write_config(tmp_path, 1)
    env = {**os.environ, "CCPROXY_CONFIG": str(config)}
    answer = subprocess.run([CCPROXY, "key-id"], input="sk-ant-api03-secret\n", capture_output=True, text=True, env=env)
    assert answer.returncode == 0 and answer.stdout.strip() == key_fingerprint("sk-ant-api03-secret")
    assert "secret" not in answer.stdout


def test_with_a_shared_store_the_report_asks_the_server_not_a_stale_file(tmp_path, monkeypatch):
    from ccproxy_core.runtime.report.sources import ApiSource, open_source
    from ccproxy_core.runtime.settings_loader import load_settings

    stale = tmp_path / "old.duckdb"
    duckdb.connect(str(stale)).close()  # an old file of a DuckDB set-up, still configured
    config = tmp_path / "config.toml"
    config.write_text(
        f'[server]\nport = 8123\n[observability]\nlog_storage_backend = "clickhouse"\nduckdb_path = "{stale}"\n'
    )
    monkeypatch.chdir(tmp_path)
    for name in [key for key in os.environ if key.startswith(("OBSERVABILITY__", "SERVER__"))]:
        monkeypatch.delenv(name)
    source = open_source(load_settings(config), None)
    assert isinstance(source, ApiSource) and source.base_url == "http://127.0.0.1:8123"


def session_row(session_id: str, requests: int, tokens_in: int, cost: float, client: str, project: str) -> dict:
    tokens = {"input": tokens_in, "output": 60_000, "cache_read": 0, "cache_write": 0}
    return {
        "key": session_id,
        "session_id": session_id,
        "last_seen": "2026-12-04T12:51:00+00:00",
        "client_name": client,
        "project": project,
        "requests": requests,
        "errors": 0,
        "tokens": tokens,
        "cost_usd": cost,
        "unpriced_requests": 0,
    }


def test_a_session_table_with_long_names_and_large_figures_cuts_names_never_numbers():
    rows = [
        session_row("5d1f3c2a-8b7e-4f61-9a0c-2e4b6d8f0a13", 3, 300_000, 1.8, "claude-code", "payments-backend"),
        session_row(
            "6d1f3c2a-8b7e-4f61-9a0c-2e4b6d8f0a14", 123_456, 4_560_000_000, 12_345.67, "codex_cli_rs", "x" * 40
        ),
    ]
    console = Console(width=80, record=True, color_system=None)
    render(console, "session", rows, "Sessions")
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80, text
    header, _, first, second, *_ = text.splitlines()[1:]
    assert header.split()[-1] == "Cost" and first.endswith(" $1.80") and second.endswith(" $12,345.67"), text
    assert "123,456" in second and "4.56B" in second and "claude-code" in first
    assert next(line for line in text.splitlines() if line.startswith("Total")).endswith(" $12,347.47")
