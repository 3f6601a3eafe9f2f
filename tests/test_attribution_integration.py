"""Attribution end to end: real SDKs and client-shaped requests through a real server into DuckDB."""

from __future__ import annotations

import json
import uuid

import anthropic
import duckdb
import httpx
import openai

from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.testing import wait_until

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "log_flush_interval_seconds": 0.05}
MESSAGE = [{"role": "user", "content": "Tell me about the weather on the coast today, briefly."}]
ALICE_KEY = "sk-ant-api03-alice-0123456789abcdefghijklmnopqrstuvwxyz"
CODEX_KEY = "sk-proj-bob-0123456789abcdefghijklmnopqrstuvwxyz"


def claude_code_request(proxy_url: str, session: str, legacy: bool = False) -> httpx.Response:
    """The shape Claude Code 2.1.332 sends: header, JSON metadata.user_id, ?beta=true, streaming."""
    device, account = "d" * 64, "4c1a9b3e-0000-4000-8000-00000000a11c"
    user_id = (
        f"user_{device}_account_{account}_session_{session}"
        if legacy
        else json.dumps({"device_id": device, "account_uuid": account, "session_id": session})
    )
    headers = {
        "user-agent": "claude-cli/2.1.332 (external, sdk-cli)",
        "x-api-key": ALICE_KEY,
        "anthropic-version": "2023-06-01",
        "x-app": "cli",
        "x-ccproxy-project": "webshop",
        "x-ccproxy-tag-feature": "checkout",
    }
    if not legacy:
        headers["x-claude-code-session-id"] = session
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "stream": True,
        "messages": MESSAGE,
        "metadata": {"user_id": user_id},
    }
    return httpx.post(f"{proxy_url}/v1/messages?beta=true", json=body, headers=headers, timeout=30)


def codex_request(proxy_url: str, session: str) -> httpx.Response:
    """Codex CLI's headers on a Chat Completions request (its session-id header and user agent)."""
    headers = {
        "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)",
        "authorization": f"Bearer {CODEX_KEY}",
        "session-id": session,
        "originator": "codex_exec",
    }
    body = {"model": "gpt-4o-mini", "messages": MESSAGE, "stream": True, "stream_options": {"include_usage": True}}
    return httpx.post(f"{proxy_url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def rows(proxy_url: str, count: int, **params) -> list[dict]:
    def ready():
        body = httpx.get(f"{proxy_url}/logs/query", params={"limit": 1000, **params}).json()
        return body["results"] if body["count"] >= count else None

    return wait_until(ready)


def start(proxy_factory, **sections):
    alice = key_fingerprint(ALICE_KEY)
    return proxy_factory(
        observability=STORAGE_ON,
        attribution={"keys": {alice: {"name": "alice-laptop", "project": "default-project"}}},
        **sections,
    )


def test_claude_code_and_codex_sessions_are_recorded_and_nothing_secret_is_stored(proxy_factory, upstream, tmp_path):
    proxy = start(proxy_factory)
    claude_session, legacy_session, codex_session = (str(uuid.uuid4()) for _ in range(3))
    for _ in range(2):
        assert claude_code_request(proxy.url, claude_session).status_code == 200
    assert claude_code_request(proxy.url, legacy_session, legacy=True).status_code == 200
    assert codex_request(proxy.url, codex_session).status_code == 200
    stored = rows(proxy.url, 4)
    by_session = {}
    for row in stored:
        by_session.setdefault(row["session_id"], []).append(row)
    assert {len(by_session[claude_session]), len(by_session[legacy_session]), len(by_session[codex_session])} == {2, 1}
    claude = by_session[claude_session][0]
    assert (claude["client_name"], claude["client_version"]) == ("claude-code", "2.1.332")
    assert (claude["project"], claude["api_key_name"], claude["api_key_id"]) == (
        "webshop",
        "alice-laptop",
        key_fingerprint(ALICE_KEY),
    )
    assert claude["end_user"] == "4c1a9b3e-0000-4000-8000-00000000a11c"
    assert claude["tags"] == {"feature": "checkout"} and claude["tokens_output"] > 0
    codex = by_session[codex_session][0]
    assert (codex["client_name"], codex["api_key_id"], codex["api_key_name"], codex["project"]) == (
        "codex",
        key_fingerprint(CODEX_KEY),
        None,
        None,
    )

    seen = httpx.get(f"{upstream.url}/_mock/requests").json()["requests"]
    mine = [r for r in seen if any(value == claude_session for _, value in r["headers"])]
    assert mine and all(not name.lower().startswith("x-ccproxy-") for r in mine for name, _ in r["headers"])

    proxy.stop()
    dump = "\n".join(
        str(row)
        for row in duckdb.connect(str(tmp_path / "ccproxy.duckdb"), read_only=True)
        .execute('SELECT * REPLACE (CAST("timestamp" AS VARCHAR) AS "timestamp") FROM access_logs')
        .fetchall()
    )
    for secret in (ALICE_KEY, CODEX_KEY, ALICE_KEY[:16], CODEX_KEY[:16]):
        assert secret not in dump


def test_sdk_user_agents_and_end_users(proxy_factory, recorder):
    proxy = start(proxy_factory, plugins=[recorder])
    claude = anthropic.Anthropic(base_url=proxy.url, api_key=ALICE_KEY, max_retries=0)
    claude.messages.create(
        model="claude-haiku-4-5",
        max_tokens=32,
        messages=MESSAGE,
        metadata={"user_id": "customer-17"},
        extra_headers={"x-ccproxy-session": "eval-1"},
    )
    gpt = openai.OpenAI(base_url=f"{proxy.url}/v1", api_key=CODEX_KEY, max_retries=0)
    gpt.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGE,
        user="user-99",
        extra_headers={"x-ccproxy-project": "research", "x-ccproxy-tag-team": "ml"},
    )
    records = {r.service_type: r for r in recorder.wait_for_ends(2)}
    assert (records["anthropic"].client_name, records["anthropic"].client_version) == (
        "anthropic-python",
        anthropic.__version__,
    )
    assert (records["anthropic"].session_id, records["anthropic"].end_user) == ("eval-1", "customer-17")
    assert (records["anthropic"].project, records["anthropic"].api_key_name) == ("default-project", "alice-laptop")
    assert (records["openai"].client_name, records["openai"].end_user) == ("openai-python", "user-99")
    assert (records["openai"].project, records["openai"].tags) == ("research", {"team": "ml"})
    started = {c.service_type: c for c in recorder.starts}
    assert started["openai"].project == "research" and started["anthropic"].session_id == "eval-1"


def test_filters_groups_and_sessions(proxy_factory):
    proxy = start(proxy_factory)
    claude_session, codex_session = str(uuid.uuid4()), str(uuid.uuid4())
    for _ in range(3):
        claude_code_request(proxy.url, claude_session)
    codex_request(proxy.url, codex_session)
    everything = rows(proxy.url, 4)
    assert len(rows(proxy.url, 3, session_id=claude_session)) == 3
    assert [r["session_id"] for r in rows(proxy.url, 1, client_name="codex")] == [codex_session]
    assert len(rows(proxy.url, 3, api_key_id="alice-laptop")) == 3
    assert len(rows(proxy.url, 3, api_key_id=key_fingerprint(ALICE_KEY))) == 3
    assert len(rows(proxy.url, 3, **{"tag.feature": "checkout"})) == 3
    assert httpx.get(f"{proxy.url}/logs/query", params={"project": "!webshop"}).json()["count"] == 1
    entries = httpx.get(f"{proxy.url}/logs/entries", params={"project": "webshop", "order_by": "timestamp"}).json()
    assert entries["total"] == 3 and entries["filters"]["project"] == "webshop"

    by_project = httpx.get(f"{proxy.url}/logs/analytics", params={"group_by": "project"}).json()["groups"]
    assert [(g["key"], g["requests"]) for g in by_project] == [("webshop", 3), (None, 1)]
    cost = sum(r["cost_usd"] or 0 for r in everything if r["project"] == "webshop")
    assert abs(by_project[0]["cost_usd"] - cost) < 1e-9 and by_project[0]["tokens"]["total"] > 0
    top1 = httpx.get(f"{proxy.url}/logs/analytics", params={"group_by": "client", "top": 1}).json()["groups"]
    assert [(g["key"], g["requests"]) for g in top1] == [("claude-code", 3), ("other", 1)]
    keyed = httpx.get(f"{proxy.url}/logs/analytics", params={"group_by": "api_key", "breakdown": "model"}).json()
    assert {g["key"]: [b["key"] for b in g["breakdown"]] for g in keyed["groups"]} == {
        "alice-laptop": ["claude-sonnet-4-5"],
        key_fingerprint(CODEX_KEY): ["gpt-4o-mini"],
    }
    tagged = httpx.get(f"{proxy.url}/logs/analytics", params={"group_by": "tag:feature"}).json()["groups"]
    assert [(g["key"], g["requests"]) for g in tagged] == [("checkout", 3), (None, 1)]
    days = httpx.get(f"{proxy.url}/logs/analytics", params={"group_by": "day"}).json()["groups"]
    assert sum(g["requests"] for g in days) == 4 and len(days[-1]["key"]) == 10

    sessions = httpx.get(f"{proxy.url}/logs/sessions").json()
    assert sessions["total"] == 2
    listed = {s["session_id"]: s for s in sessions["sessions"]}
    claude = listed[claude_session]
    assert (claude["requests"], claude["models"], claude["project"], claude["client_name"]) == (
        3,
        ["claude-sonnet-4-5"],
        "webshop",
        "claude-code",
    )
    assert claude["first_seen"] <= claude["last_seen"] and claude["errors"] == 0
    detail = httpx.get(f"{proxy.url}/logs/sessions/{claude_session}").json()
    assert [r["timestamp"] for r in detail["requests"]] == sorted(r["timestamp"] for r in detail["requests"])
    assert detail["count"] == 3 and detail["truncated"] is False
    assert httpx.get(f"{proxy.url}/logs/sessions/nope").status_code == 404
    assert httpx.get(f"{proxy.url}/logs/session", params={"session_id": claude_session}).json() == detail


def test_any_session_id_can_be_read_back(proxy_factory):
    proxy = start(proxy_factory)
    odd = ["team/alpha", "..", ".", "a%2Fb", "in ner?#"]
    for session in odd:
        claude_code_request(proxy.url, session)
    rows(proxy.url, len(odd))
    for session in odd:
        by_query = httpx.get(f"{proxy.url}/logs/session", params={"session_id": session})
        assert by_query.status_code == 200 and by_query.json()["session_id"] == session, session
        assert by_query.json()["count"] == 1
    by_path = httpx.get(f"{proxy.url}/logs/sessions/team/alpha").json()
    assert by_path["session_id"] == "team/alpha" and by_path["count"] == 1


def test_bad_attribution_parameters_are_named(proxy_factory):
    proxy = start(proxy_factory)
    for params, name in (
        ({"group_by": "colour"}, "group_by"),
        ({"group_by": "tag:"}, "group_by"),
        ({"group_by": "model", "breakdown": "day"}, "breakdown"),
        ({"tag.Bad Name": "x"}, "tag.Bad Name"),
        ({"tag.team": ""}, "tag.team"),
    ):
        answer = httpx.get(f"{proxy.url}/logs/analytics", params=params)
        assert answer.status_code == 422, params
        assert answer.json()["detail"][0]["loc"][-1] == name
