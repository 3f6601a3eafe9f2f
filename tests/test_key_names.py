"""A key is one key in every read, whatever name its requests were recorded under: a name given in
``[attribution.keys]`` after the key was first used, or a new name, labels all of its requests."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from ccproxy_core.accounting.attribution import key_fingerprint
from tests.dashboard_pages import ALL_LOGS_ON

from .test_attribution_integration import ALICE_KEY, CODEX_KEY, STORAGE_ON, claude_code_request, codex_request, rows
from .test_clickhouse_logs_api import clickhouse_storage
from .test_report import report_in_process, run_report, write_config

ALICE, CODEX = key_fingerprint(ALICE_KEY), key_fingerprint(CODEX_KEY)


def serve_and_send(proxy_factory, observability: dict, name: str | None, alice_requests: int, stored: int):
    """A server whose configuration names Alice's key ``name`` (or nothing); Alice sends requests."""
    keys = {ALICE: {"name": name}} if name else {}
    proxy = proxy_factory(observability=observability, attribution={"keys": keys})
    for _ in range(alice_requests):
        assert claude_code_request(proxy.url, str(uuid.uuid4())).status_code == 200
    rows(proxy.url, stored)
    return proxy


def name_the_key_after_use(proxy_factory, observability: dict):
    """Three requests while the key has no name, one after it is named ``alice-laptop``; one of Bob's."""
    before = serve_and_send(proxy_factory, observability, None, 3, 3)
    assert codex_request(before.url, str(uuid.uuid4())).status_code == 200
    rows(before.url, 4)
    before.stop()
    return serve_and_send(proxy_factory, observability, "alice-laptop", 1, 5)


def key_groups(proxy_url: str, **params) -> list[tuple]:
    answer = httpx.get(f"{proxy_url}/logs/analytics", params={"group_by": "api_key", **params}).json()
    return [(g["key"], g["api_key_id"], g["requests"]) for g in answer["groups"]]


def check_one_key_under_its_name(proxy_url: str) -> None:
    alice_rows = rows(proxy_url, 4, api_key_id=ALICE)
    assert sorted(str(row["api_key_name"]) for row in alice_rows) == ["None", "None", "None", "alice-laptop"]
    assert len(rows(proxy_url, 4, api_key_id="alice-laptop")) == 4
    assert len(rows(proxy_url, 4, api_key_id=f"alice-laptop,{CODEX}")) == 5
    assert [row["api_key_id"] for row in rows(proxy_url, 1, api_key_id="!alice-laptop")] == [CODEX]
    assert key_groups(proxy_url) == [("alice-laptop", ALICE, 4), (CODEX, CODEX, 1)]
    answer = httpx.get(f"{proxy_url}/logs/analytics", params={"group_by": "api_key"}).json()
    assert abs(answer["groups"][0]["cost_usd"] - sum(row["cost_usd"] for row in alice_rows)) < 1e-9
    by_model = httpx.get(f"{proxy_url}/logs/analytics", params={"group_by": "model", "breakdown": "api_key"}).json()
    claude = next(g for g in by_model["groups"] if g["key"] == "claude-sonnet-4-5")
    assert [(part["key"], part["api_key_id"], part["requests"]) for part in claude["breakdown"]] == [
        ("alice-laptop", ALICE, 4)
    ]


def test_a_key_named_after_use_is_one_group_that_its_name_finds(proxy_factory):
    proxy = name_the_key_after_use(proxy_factory, STORAGE_ON)
    check_one_key_under_its_name(proxy.url)
    assert key_groups(proxy.url, top=1) == [("alice-laptop", ALICE, 4), ("other", None, 1)]


def test_a_renamed_key_is_one_group_under_its_new_name(proxy_factory):
    proxy = name_the_key_after_use(proxy_factory, STORAGE_ON)
    proxy.stop()
    proxy = serve_and_send(proxy_factory, STORAGE_ON, "alice-desktop", 1, 6)
    assert key_groups(proxy.url) == [("alice-desktop", ALICE, 5), (CODEX, CODEX, 1)]
    assert len(rows(proxy.url, 5, api_key_id="alice-desktop")) == 5
    # The old name is no key's name any more: it finds nothing rather than part of a key.
    assert httpx.get(f"{proxy.url}/logs/query", params={"api_key_id": "alice-laptop"}).json()["count"] == 0


def key_report_rows(answer) -> list[tuple]:
    return [(row["key"], row.get("api_key_id"), row["requests"]) for row in json.loads(answer.stdout)["rows"]]


def test_the_key_report_shows_one_row_per_key_from_the_server_and_from_the_file(proxy_factory, tmp_path):
    proxy = name_the_key_after_use(proxy_factory, STORAGE_ON)
    config = write_config(tmp_path, int(proxy.url.rsplit(":", 1)[1]))
    from_api = run_report(config, "key", "--json")
    assert from_api.returncode == 0, from_api.stderr
    assert json.loads(from_api.stdout)["source"] == "api"
    assert key_report_rows(from_api) == [("alice-laptop", ALICE, 4), (CODEX, CODEX, 1)]
    proxy.stop()
    from_file = report_in_process(config, "key", "--json")
    assert from_file.exit_code == 0, from_file.output
    assert json.loads(from_file.stdout)["source"] == "file"
    assert key_report_rows(from_file) == [("alice-laptop", ALICE, 4), (CODEX, CODEX, 1)]
    table = report_in_process(config, "key")
    assert [line.split()[0] for line in table.stdout.splitlines() if line.startswith(("alice", CODEX))] == [
        "alice-laptop",
        CODEX,
    ]


def test_a_key_named_after_use_is_one_group_on_clickhouse(proxy_factory, clickhouse_server):
    proxy = name_the_key_after_use(proxy_factory, clickhouse_storage(clickhouse_server.url))
    check_one_key_under_its_name(proxy.url)


def sessions_keys(proxy_url: str) -> dict[str, str]:
    return {s["session_id"]: s["api_key"] for s in httpx.get(f"{proxy_url}/logs/sessions").json()["sessions"]}


def session_named_midway(proxy_factory, observability: dict):
    """One session: Alice's and Bob's requests before Alice's key is named, one of Alice's after."""
    session = str(uuid.uuid4())
    before = proxy_factory(observability=observability, attribution={"keys": {}})
    claude_code_request(before.url, session)
    codex_request(before.url, session)
    rows(before.url, 2)
    before.stop()
    proxy = serve_and_send(proxy_factory, observability, "alice-laptop", 0, 2)
    claude_code_request(proxy.url, session)
    rows(proxy.url, 3)
    return proxy, session


BOTH_KEYS = ", ".join(sorted([CODEX, "alice-laptop"]))


def test_a_session_lists_its_key_once_under_the_name_configured_now(proxy_factory, tmp_path):
    proxy, session = session_named_midway(proxy_factory, STORAGE_ON)
    assert sessions_keys(proxy.url) == {session: BOTH_KEYS}
    proxy.stop()
    from_file = report_in_process(write_config(tmp_path, 1), "session", "--json")
    assert [row["api_key"] for row in json.loads(from_file.stdout)["rows"]] == [BOTH_KEYS]


def test_a_session_lists_its_key_once_on_clickhouse(proxy_factory, clickhouse_server):
    proxy, session = session_named_midway(proxy_factory, clickhouse_storage(clickhouse_server.url))
    assert sessions_keys(proxy.url) == {session: BOTH_KEYS}


@pytest.mark.browser
def test_the_dashboard_spends_by_key_one_row_per_key(open_dashboard, proxy_factory):
    proxy, session = session_named_midway(proxy_factory, ALL_LOGS_ON)
    tab, _ = open_dashboard(f"{proxy.url}/dashboard")
    tab.select_option("#breakdown-dimension", "api_key")
    expect(tab.locator('#by-dimension tr[data-key="alice-laptop"] td').nth(1)).to_have_text("2", timeout=10_000)
    expect(tab.locator("#by-dimension tr")).to_have_count(2)
    session_row = tab.locator(f'#sessions tr[data-session-id="{session}"]')
    expect(session_row.locator("td").nth(3)).to_have_text(BOTH_KEYS)
