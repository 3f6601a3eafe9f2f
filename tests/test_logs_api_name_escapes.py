"""Names holding ``,``, a leading ``!`` or ``\\`` are selected exactly by the /logs filters, on both stores."""

from __future__ import annotations

import httpx
import pytest

from tests.test_clickhouse_logs_api import clickhouse_storage
from tests.test_logs_api_integration import STORAGE_ON, stored_rows

PROJECTS = ("acme,inc", "!urgent", "acme", "a\\b")
BODY = {"model": "claude-haiku-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(params=["duckdb", "clickhouse"])
def proxy_url(request, proxy_factory) -> str:
    """A proxy on either store holding one request per project of :data:`PROJECTS`, session ``s,<project>``."""
    if request.param == "duckdb":
        observability = STORAGE_ON
    else:
        observability = clickhouse_storage(request.getfixturevalue("clickhouse_server").url)
    proxy = proxy_factory(observability=observability)
    for project in PROJECTS:
        headers = {
            "x-api-key": "sk-ant-escapes",
            "anthropic-version": "2023-06-01",
            "x-ccproxy-project": project,
            "x-ccproxy-session": f"s,{project}",
        }
        assert httpx.post(f"{proxy.url}/v1/messages", json=BODY, headers=headers).status_code == 200
    assert sorted(row["project"] for row in stored_rows(proxy.url, len(PROJECTS))) == sorted(PROJECTS)
    return proxy.url


def projects(proxy_url: str, path: str = "/logs/query", **params: str) -> list[str]:
    body = httpx.get(f"{proxy_url}{path}", params={"limit": 100, **params}).json()
    return sorted(row["project"] for row in body["results" if path == "/logs/query" else "sessions"])


def test_escaped_names_select_exactly_those_rows(proxy_url):
    assert projects(proxy_url, project="acme\\,inc") == ["acme,inc"]
    assert projects(proxy_url, project="\\!urgent") == ["!urgent"]
    assert projects(proxy_url, project="a\\\\b") == ["a\\b"]
    assert projects(proxy_url, project="acme\\,inc,\\!urgent") == ["!urgent", "acme,inc"]
    assert projects(proxy_url, project="!acme\\,inc,!\\!urgent") == ["a\\b", "acme"]
    assert projects(proxy_url, project="acme,inc") == ["acme"]  # unescaped: a list of two names
    assert projects(proxy_url, session_id="s\\,acme\\,inc") == ["acme,inc"]
    assert projects(proxy_url, "/logs/sessions", project="\\!urgent") == ["!urgent"]


def test_analytics_and_session_drill_down_take_the_same_names(proxy_url):
    answer = httpx.get(f"{proxy_url}/logs/analytics", params={"hours": 1, "project": "acme\\,inc"}).json()
    assert answer["totals"]["requests"] == 1
    one = httpx.get(f"{proxy_url}/logs/session", params={"session_id": "s,acme,inc"}).json()
    assert [row["project"] for row in one["requests"]] == ["acme,inc"]  # one id, never a list


def test_a_lone_trailing_backslash_is_a_422_naming_the_parameter(proxy_url):
    answer = httpx.get(f"{proxy_url}/logs/query", params={"project": "acme\\"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["query", "project"]
