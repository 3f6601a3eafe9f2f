"""The ClickHouse store's parts: URL and masking, filters, rows, migrations, retention, hostile records."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from ccproxy_clickhouse import migrate, schema
from ccproxy_clickhouse.filters import Params, where_clause
from ccproxy_clickhouse.retention import PartitionRetention
from ccproxy_clickhouse.rows import record_to_row
from ccproxy_clickhouse.settings import ClickHouseSettings
from ccproxy_clickhouse.store import ClickHouseLogStore
from ccproxy_clickhouse.target import parse_url
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter
from ccproxy_core.testing import make_record, wait_until

RECORD = make_record(
    request_id="r-1",
    timestamp=datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC),
    user_agent="t",
    model="claude-haiku-4-5",
    streaming=False,
    duration_ms=10.5,
    duration_seconds=0.0105,
    tokens_input=5,
    tokens_output=7,
    cache_read_tokens=None,
    cache_write_tokens=None,
    cost_usd=Decimal("0.000123"),
    rate_limits={"requests_remaining": 10.0},
)


def test_url_forms_and_errors_that_never_show_the_password():
    target = parse_url("clickhouse://alice:p%40ss@db.example:9440/logs")
    assert (target.host, target.port, target.user, target.password, target.database) == (
        "db.example",
        9440,
        "alice",
        "p@ss",
        "logs",
    )
    assert target.masked() == "clickhouse://alice:***@db.example:9440/logs"
    assert parse_url("clickhouse://localhost").masked() == "clickhouse://default@localhost:9000/default"
    for bad, expected in [
        ("http://u:topsecret@h:8123/db", "must start with clickhouse://"),
        ("clickhouse://u:topsecret@:9000/db", "has no host"),
        ("clickhouse://u:topsecret@h:99999/db", "not a valid URL"),
        ("clickhouse://u:topsecret@h/db;drop", "letters, digits and _"),
    ]:
        with pytest.raises(StartupError) as caught:
            parse_url(bad)
        assert expected in str(caught.value) and "OBSERVABILITY__CLICKHOUSE_URL" in str(caught.value)
        assert "topsecret" not in str(caught.value)


# An ``@``, ``/`` or quote left unescaped in the password: the URL parsers split the user part at its last ``@``.
@pytest.mark.parametrize(
    "password", ["topsecret", "top@secret", "top/secret", "top@se/cret@", "top'secret", 'top"se>cret', "top secret"]
)
def test_config_show_masks_the_clickhouse_password(password):
    env = {
        "OBSERVABILITY__CLICKHOUSE_URL": f"clickhouse://ccproxy:{password}@127.0.0.1:9000/ccproxy",
        "OBSERVABILITY__LOG_STORAGE_BACKEND": "clickhouse",
        "PATH": "/usr/bin:/bin",
    }
    shown = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "config", "show"], env=env, capture_output=True, text=True, check=True
    ).stdout
    # Before: "clickhouse://***@secret@..." for "top@secret", and "top/secret" whole.
    assert "secret" not in shown and "cret" not in shown
    assert '"clickhouse_url": "clickhouse://***@127.0.0.1:9000/ccproxy"' in shown


def test_bad_cluster_name_is_one_line_naming_the_setting():
    result = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "config", "show"],
        env={"OBSERVABILITY__CLICKHOUSE_CLUSTER": "a b;c", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "OBSERVABILITY__CLICKHOUSE_CLUSTER" in result.stderr


def test_filters_bind_every_value_and_prune_by_day():
    params = Params()
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    where = where_clause(
        LogFilters(
            start, end, model=NameFilter(("a'b",), ("x",)), status_codes=(429,), status_classes=(5,), streaming=True
        ),
        params,
    )
    assert "a'b" not in where and "429" not in where
    assert "event_date >= %(p0)s" in where and "(`model` IS NULL OR `model` NOT IN (%(p5)s))" in where
    assert params.values["p0"] == date(2026, 12, 1) and params.values["p1"] == int(start.timestamp()) * 1_000_000
    assert where_clause(None, Params()) == "" and where_clause(LogFilters(), Params()) == ""


def test_rows_refuse_what_clickhouse_cannot_hold():
    row = record_to_row(RECORD, "me", 0)
    assert len(row) == len(schema.INSERT_COLUMNS) and row[-4] == int(RECORD.timestamp.timestamp()) * 1_000_000 + 123456
    for bad, reason in (
        (replace(RECORD, cost_usd=Decimal("1e12")), r"cost_usd=.* does not fit a cost column"),
        (replace(RECORD, duration_ms=float("nan")), r"duration_ms is not a finite number"),
        (replace(RECORD, tokens_output=2**70), r"tokens_output=.* does not fit its integer column"),
    ):
        with pytest.raises(ValueError, match=reason):
            record_to_row(bad, "me", 0)


def open_store(url: str, **more) -> ClickHouseLogStore:
    return ClickHouseLogStore.open(ClickHouseSettings(clickhouse_url=url, log_flush_interval_seconds=0.05, **more))


def test_hostile_records_are_dropped_alone_and_counted(clickhouse_server):
    store = open_store(clickhouse_server.url)
    try:
        store.submit(replace(RECORD, request_id="bad-cost", cost_usd=Decimal("1e15")))
        store.submit(replace(RECORD, request_id="nan", duration_ms=float("nan")))
        store.submit(replace(RECORD, request_id="surrogate", user_agent="lone \ud800 surrogate"))
        store.submit(replace(RECORD, request_id="ok", error_message="\x00 nul, \u202e bidi, \U0001f600 emoji"))
        stats = wait_until(lambda: (s := store.stats())["rows_written"] == 1 and s)
        assert stats["dropped_records"] == 3
    finally:
        store.close()
    assert clickhouse_server.query("SELECT request_id, error_message FROM ccproxy.access_logs") == [
        ("ok", "\x00 nul, \u202e bidi, \U0001f600 emoji")
    ]


def test_a_new_migration_adds_its_column_once_and_a_newer_schema_is_refused(clickhouse_server, monkeypatch):
    open_store(clickhouse_server.url).close()
    newer = schema.SCHEMA_VERSION + 1
    step = schema.Migration(newer, "a test column", add_columns=(("test_extra", "Nullable(String)"),))
    monkeypatch.setattr(migrate, "MIGRATIONS", (*schema.MIGRATIONS, step))
    monkeypatch.setattr(migrate, "SCHEMA_VERSION", newer)
    for _ in range(2):  # a second start finds it applied
        open_store(clickhouse_server.url).close()
    columns = clickhouse_server.query(
        "SELECT name FROM system.columns WHERE database = 'ccproxy' AND table = 'access_logs' AND name = 'test_extra'"
    )
    assert columns == [("test_extra",)]
    assert clickhouse_server.query("SELECT version FROM ccproxy.ccproxy_schema_migrations ORDER BY version") == [
        (version,) for version in range(1, newer + 1)
    ]
    monkeypatch.setattr(migrate, "SCHEMA_VERSION", schema.SCHEMA_VERSION)
    with pytest.raises(StartupError, match=f"schema version {newer}, newer than this ccproxy knows"):
        open_store(clickhouse_server.url)


def test_retention_drops_whole_days_older_than_the_setting(clickhouse_server):
    store = open_store(clickhouse_server.url)
    today = datetime.now(UTC).replace(hour=12)
    try:
        for age in (0, 1, 4, 10):
            store.submit(replace(RECORD, request_id=f"age-{age}", timestamp=today - timedelta(days=age)))
        wait_until(lambda: store.stats()["rows_written"] == 4)
        retention = PartitionRetention(store.pool.run, "ccproxy", "access_logs", days=2.5)
        assert retention.run_once() == 2  # the days 10 and 4 days ago ended more than 3 days ago
    finally:
        store.close()
    kept = clickhouse_server.query("SELECT request_id FROM ccproxy.access_logs ORDER BY request_id")
    assert kept == [("age-0",), ("age-1",)]


def test_a_write_failure_is_one_line_that_says_what_happened():
    from clickhouse_driver import errors

    from ccproxy_clickhouse.writer import failure_text

    timeout = failure_text(errors.SocketTimeoutError("(127.0.0.1:46420)"))
    assert "timeout" in timeout and "127.0.0.1:46420" in timeout  # its own text was only "Code: 209."
    stack = "DB::Exception: No such column finish_reason in table access_logs. Stack trace:\n0. /lib/x\n1. y"
    changed = failure_text(errors.ServerException(stack, code=16))
    assert "\n" not in changed and "Stack trace" not in changed and "/lib/x" not in changed
    assert changed.startswith("Code: 16. DB::Exception: No such column finish_reason")
    assert "columns were changed outside ccproxy" in changed


def test_writes_resuming_after_failures_are_logged_once(caplog):
    from clickhouse_driver import errors

    from ccproxy_clickhouse.writer import LogWriter

    class FlakyClient:
        calls = 0

        def execute(self, query, *args, **kwargs):
            FlakyClient.calls += 1
            if FlakyClient.calls <= 2:
                raise errors.NetworkError("Connection refused (127.0.0.1:9)")
            return [(0,)] if query.startswith("SELECT count()") else []

        def disconnect(self):
            pass

    writer = LogWriter(lambda *args: FlakyClient(), "ccproxy", lambda: None, 100, 10, 0.01)
    from tests.duckdb_records import numbered_record

    writer._pending = [writer.to_row(numbered_record(1))]
    with caplog.at_level("INFO", logger="ccproxy.clickhouse"):
        results = [writer.write_pending() for _ in range(3)]
    assert results[:2] == [False, False] and results[2] is True
    resumed = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
    assert resumed == ["writes to ClickHouse resumed after 2 failed attempt(s)"]
