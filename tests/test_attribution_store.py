"""The DuckDB store's attribution reads: migration of a file without the attribution columns, groups, sessions."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import duckdb

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.log_store import Grouping, LogFilters, NameFilter
from ccproxy_core.testing import make_record, wait_until
from ccproxy_duckdb.schema import MIGRATIONS, SCHEMA_VERSION

from .test_duckdb_startup import open_store

T0 = datetime(2025, 1, 31, 23, 59, tzinfo=UTC)
BASE = make_record(
    request_id="r",
    timestamp=T0,
    client_ip=None,
    user_agent=None,
    model="claude-haiku-4-5",
    streaming=False,
    duration_ms=10.0,
    duration_seconds=0.01,
    tokens_input=10,
    tokens_output=5,
    cache_read_tokens=1,
    cache_write_tokens=2,
    cost_usd=Decimal("0.001"),
)


def record(n: int, **changes) -> AccessRecord:
    return dataclasses.replace(BASE, request_id=f"r{n:03d}", timestamp=T0 + timedelta(minutes=n), **changes)


ATTRIBUTION_VERSION = 4


def write_file_before_attribution(path) -> None:
    with duckdb.connect(str(path)) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
        for step in (step for step in MIGRATIONS if step.version < ATTRIBUTION_VERSION):
            for statement in step.statements:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version VALUES (?, ?)", [step.version, datetime.now(UTC)])
        connection.execute("INSERT INTO access_logs (request_id, \"timestamp\", model) VALUES ('old', ?, 'm')", [T0])


def test_a_file_before_attribution_gains_its_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "before.duckdb"
    write_file_before_attribution(path)
    store = open_store(path)
    try:
        (row,) = asyncio.run(store.query(LogFilters(), 10)).rows
        version = store.database.cursor().execute("SELECT max(version) FROM schema_version").fetchone()[0]
        groups = asyncio.run(store.groups(LogFilters(), Grouping("project")))
    finally:
        store.close()
    attribution_step = next(step for step in MIGRATIONS if step.version == ATTRIBUTION_VERSION)
    assert version == SCHEMA_VERSION and attribution_step.description.startswith("attribution")
    assert row["request_id"] == "old" and row["session_id"] is None and row["tags"] == {}
    assert row["finish_reason"] is None  # a column of a later version, added too
    assert [(g["key"], g["requests"]) for g in groups] == [(None, 1)]


def test_a_project_named_other_is_told_from_the_group_summing_the_rest(tmp_path):
    store = open_store(tmp_path / "other.duckdb")
    for i, project in enumerate(["other", "other", "a", "b"]):
        store.submit(record(i, project=project, cost_usd=Decimal("0.01")))
    try:
        wait_until(lambda: store.stats()["rows_written"] == 4)
        groups = asyncio.run(store.groups(LogFilters(), Grouping("project", top=1)))
    finally:
        store.close()
    assert [(g["key"], g.get("rest", False), g["requests"]) for g in groups] == [
        ("other", False, 2),
        ("other", True, 2),
    ]


def test_groups_top_n_other_breakdown_days_and_sessions(tmp_path):
    store = open_store(tmp_path / "a.duckdb")
    records = [
        record(
            i,
            project=f"p{i % 4}",
            session_id=f"s{i % 3}",
            tags={"team": "a" if i % 2 else "b"},
            model="claude-haiku-4-5" if i < 6 else "claude-sonnet-4-5",
            cost_usd=Decimal(i + 1) / 1000,
            status_code=500 if i == 7 else 200,
        )
        for i in range(12)
    ]
    for each in records:
        store.submit(each)
    try:
        wait_until(lambda: store.stats()["rows_written"] == 12)
        top = asyncio.run(store.groups(LogFilters(), Grouping("project", top=2, breakdown="model")))
        days = asyncio.run(store.groups(LogFilters(), Grouping("day")))
        tagged = asyncio.run(store.groups(LogFilters(tags=(("team", "a"),)), Grouping("tag", "team")))
        sessions, total = asyncio.run(store.sessions(LogFilters(project=NameFilter(exclude=("p0",))), 2, 0))
        ordered = asyncio.run(store.session_requests("s1", 100))
    finally:
        store.close()
    cost = {f"p{k}": sum(float(r.cost_usd) for r in records if r.project == f"p{k}") for k in range(4)}
    assert [g["key"] for g in top] == ["p3", "p2", "other"]  # p3 costs most: 4+8+12 thousandths
    assert abs(top[0]["cost_usd"] - cost["p3"]) < 1e-12
    assert top[2]["requests"] == 6 and abs(top[2]["cost_usd"] - cost["p0"] - cost["p1"]) < 1e-12
    assert top[2]["tokens"] == {"input": 60, "output": 30, "cache_read": 6, "cache_write": 12, "total": 108}
    assert "breakdown" not in top[2]
    assert {b["key"] for b in top[0]["breakdown"]} == {"claude-haiku-4-5", "claude-sonnet-4-5"}
    assert [(d["key"], d["requests"]) for d in days] == [("2025-01-31", 1), ("2025-02-01", 11)]
    assert [(g["key"], g["requests"]) for g in tagged] == [("a", 6)]
    assert total == 3 and [s["session_id"] for s in sessions] == ["s2", "s1"]  # most recently active first
    s1 = next(s for s in sessions if s["session_id"] == "s1")
    assert s1["errors"] == 1 and s1["models"] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert s1["project"] == "p1, p2, p3"  # every project it used, not one of them
    assert [r["request_id"] for r in ordered] == ["r001", "r004", "r007", "r010"]


def test_the_other_group_costs_exactly_what_its_requests_cost(tmp_path):
    store = open_store(tmp_path / "a.duckdb")
    costs = {"top": Decimal("0.0197"), "second": Decimal("0.0120533"), "third": Decimal("0.0086")}
    for n, (project, cost) in enumerate(costs.items()):
        store.submit(record(n, project=project, cost_usd=cost))
    try:
        wait_until(lambda: store.stats()["rows_written"] == len(costs))
        groups = asyncio.run(store.groups(LogFilters(), Grouping("project", top=1)))
    finally:
        store.close()
    # As floats, 0.0403533 - 0.0197 is 0.020653300000000003; the answer's other figures are exact.
    assert [(g["key"], g["cost_usd"]) for g in groups] == [("top", 0.0197), ("other", 0.0206533)]
