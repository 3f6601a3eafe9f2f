"""``ccproxy report`` covers the whole window: the sessions it does not list are summed as ``other``,
each listed session has its own parts, and through a server it gives what it gives from the file."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from ccproxy_core.runtime.cli import main
from ccproxy_core.runtime.report.sources import (
    MAX_GROUPS,
    MAX_LIST_QUERY_CHARS,
    MAX_LISTED_IDS,
    filter_item,
    id_batches,
)
from ccproxy_core.runtime.report.tables import money
from ccproxy_core.testing import make_record
from ccproxy_duckdb.database import Database
from ccproxy_duckdb.writer import LogWriter
from ccproxy_logs_api.params import parse_names

from .test_report import write_config

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True}


def write_records(path: Path, sessions: list[str | None]) -> None:
    """One request costing $1.10 per entry of ``sessions`` (``None``: a request without a session), a second apart."""
    write_requests(path, [{"session_id": session, "dollars": "1.10"} for session in sessions])


def write_requests(path: Path, requests: list[dict]) -> None:
    """One record per entry, a second apart: its ``session_id``, ``dollars`` and any other record field."""
    database = Database.open(str(path))
    writer = LogWriter(database, queue_size=len(requests), batch_size=500, flush_interval=0.1)
    writer.start()
    first = datetime.now(UTC) - timedelta(hours=1, seconds=len(requests))
    for n, asked in enumerate(requests):
        fields = dict(asked)
        cost = Decimal(fields.pop("dollars"))
        dollars = {"cost_usd": cost, "cost_input_usd": cost, "cost_output_usd": Decimal(0)}
        zero = {"cost_cache_read_usd": Decimal(0), "cost_cache_write_usd": Decimal(0)}
        writer.submit(
            make_record(request_id=f"r{n}", timestamp=first + timedelta(seconds=n), **dollars, **zero, **fields)
        )
    while writer.stats()["rows_written"] < len(requests):
        time.sleep(0.05)
    writer.close()
    database.close()


def report(config: Path, *args: str) -> dict:
    answer = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["report", *args, "--json", "--config", str(config)])
    assert answer.exit_code == 0, answer.output
    return json.loads(answer.output)


def comparable(answer: dict) -> dict:
    return {key: value for key, value in answer.items() if key not in ("source", "since", "until")}


def test_a_session_report_sums_the_sessions_it_does_not_list_as_other(proxy_factory, tmp_path):
    write_records(tmp_path / "ccproxy.duckdb", ["a", "b", "c", "d", "e", "f", None])
    config = write_config(tmp_path, 1)
    from_file = report(config, "session", "--limit", "2")
    assert [(row["key"], row["requests"], row["cost_usd"]) for row in from_file["rows"]] == [
        ("f", 1, 1.1),
        ("e", 1, 1.1),
        ("other", 5, 5.5),
    ]
    assert (from_file["totals"]["requests"], from_file["totals"]["cost_usd"]) == (7, 7.7)
    assert [row["key"] for row in report(config, "session", "--limit", "6")["rows"]][-1] == "other"  # no session
    every = report(config, "session", "--limit", "20", "--breakdown", "model")
    assert [row["key"] for row in every["rows"]] == ["f", "e", "d", "c", "b", "a", "other"]

    proxy = proxy_factory(observability=STORAGE_ON)  # holds the same file
    through_server = report(config, "session", "--limit", "2", "--url", proxy.url)
    assert through_server["source"] == "api" and comparable(through_server) == comparable(from_file)


def test_through_a_server_the_report_asks_within_the_apis_limits(proxy_factory, tmp_path):
    write_records(tmp_path / "ccproxy.duckdb", [f"s{n:04d}" for n in range(1003)])
    config = write_config(tmp_path, 1)
    asks = [
        ("session", "--limit", "1001"),  # more than one page of /logs/sessions
        ("session", "--limit", "1001", "--breakdown", "model"),  # parts of more sessions than one filter names
        ("model", "--since", "1990-01-01"),  # a day series longer than the API gives at once
        ("daily", "--since", "1990-01-01"),  # more days than the API's groups
        ("project", "--since", "2001-01-01", "--until", "2001-01-31"),  # nothing stored then
    ]
    from_file = [report(config, *ask) for ask in asks]
    assert len(from_file[0]["rows"]) == 1002 and from_file[0]["rows"][-1]["requests"] == 2
    assert from_file[1]["totals"]["requests"] == from_file[2]["totals"]["requests"] == 1003

    proxy = proxy_factory(observability=STORAGE_ON)  # holds the same file
    for ask, expected in zip(asks, from_file, strict=True):
        assert comparable(report(config, *ask, "--url", proxy.url)) == comparable(expected), ask


def test_only_a_server_without_the_logs_api_gets_the_hint_to_turn_it_on(proxy_factory, tmp_path):
    config = write_config(tmp_path, 1)
    off = proxy_factory(observability={"logs_collection_enabled": True})
    answer = CliRunner().invoke(main, ["report", "model", "--url", off.url, "--config", str(config)])
    assert answer.exit_code == 2 and "answered 404" in answer.output
    assert "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true" in answer.output
    locked = proxy_factory(observability=STORAGE_ON, security={"auth_token": "s3cret"})
    answer = CliRunner().invoke(main, ["report", "model", "--url", locked.url, "--config", str(config)])
    assert answer.exit_code == 2 and "answered 401" in answer.output and "SECURITY__AUTH_TOKEN" in answer.output
    assert "LOGS_ENDPOINTS_ENABLED" not in answer.output


def test_each_listed_session_gets_its_own_parts_however_cheap(proxy_factory, tmp_path):
    # more costly sessions than the API groups at once: the listed ones are found by id, not by cost
    costly = [{"session_id": f"s{n:05d}", "dollars": "2.00"} for n in range(MAX_GROUPS + 1)]
    haiku = {"model": "claude-haiku-4-5", "dollars": "0.01"}
    recent = [{**haiku, "session_id": name} for name in ("other", "a,b", "!recent-2", "c\\x07d", "recent-1")]
    write_requests(tmp_path / "ccproxy.duckdb", costly + recent)
    config = write_config(tmp_path, 1)
    from_file = report(config, "session", "--limit", "6", "--breakdown", "model")
    parts = [(row["key"], [(p["key"], p["requests"]) for p in row["breakdown"]]) for row in from_file["rows"]]
    assert parts == [
        ("recent-1", [("claude-haiku-4-5", 1)]),
        ("c\\x07d", [("claude-haiku-4-5", 1)]),  # a control character as clean_text escapes it
        ("!recent-2", [("claude-haiku-4-5", 1)]),
        ("a,b", [("claude-haiku-4-5", 1)]),
        ("other", [("claude-haiku-4-5", 1)]),  # a session named like the row of the rest
        (f"s{MAX_GROUPS:05d}", [("claude-sonnet-4-5", 1)]),
        ("other", []),
    ]

    proxy = proxy_factory(observability=STORAGE_ON)  # holds the same file
    through_server = report(config, "session", "--limit", "6", "--breakdown", "model", "--url", proxy.url)
    assert comparable(through_server) == comparable(from_file)


def test_session_ids_are_asked_for_in_batches_the_api_reads_back_exactly():
    ids = [f"{n:03d}" + "é" * 120 for n in range(150)] + [f"s{n}" for n in range(250)]
    ids += ["a,b", "!x", "c\\x07d", " padded ", "a\\,!b", "\\"]
    batches = id_batches([filter_item(session) for session in ids])
    assert sum(len(batch) for batch in batches) == len(ids)
    read_back = [parse_names("session_id", ",".join(batch)) for batch in batches]
    assert [name for names in read_back for name in names.include] == ids
    assert not any(names.exclude for names in read_back)
    for batch in batches:
        assert len(batch) <= MAX_LISTED_IDS and len(quote(",".join(batch), safe="")) <= MAX_LIST_QUERY_CHARS


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.045, "$0.05"),
        (1234.565, "$1,234.57"),
        (0.01, "$0.01"),
        (0.00125, "$0.0013"),
        (0.00005, "<$0.0001"),
        (0, "$0.00"),
        (float("nan"), "unknown"),
    ],
)
def test_money_rounds_the_amount_the_api_wrote_half_up(value, shown):
    # Before: 0.045 (the float 0.04499...) was shown as $0.04, where the dashboard shows $0.05.
    assert money(value) == shown
