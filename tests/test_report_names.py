"""``ccproxy report`` shows the names clients chose literally: rich markup or emoji codes in a
project, session or model are text, never markup, in every report kind, from the server and the file."""

from __future__ import annotations

import json

import httpx
from click.testing import CliRunner

from ccproxy_core.runtime.cli import main

from .test_attribution_integration import rows
from .test_report import write_config

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "log_flush_interval_seconds": 0.05}
HYPERLINK = "[link=https://evil.example/]webshop[/link]"
ASKS = (
    ("project",),
    ("session",),
    ("model",),
    ("daily", "--breakdown", "project"),
    ("daily", "--breakdown", "model"),
    ("session", "--breakdown", "model"),
    ("model", "--breakdown", "session"),
    ("client", "--breakdown", "project"),
)


def send(proxy_url: str, model: str, project: str | None = None, session: str | None = None) -> None:
    headers = {"x-api-key": "sk-ant-x", "anthropic-version": "2023-06-01"}
    headers |= {"x-ccproxy-project": project} if project else {}
    headers |= {"x-ccproxy-session": session} if session else {}
    path = "/v1/messages" if model.startswith("claude") else "/v1/nonexistent"  # the provider refuses the rest
    body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    answer = httpx.post(f"{proxy_url}{path}", json=body, headers=headers, timeout=30)
    assert answer.status_code in (200, 404), answer.text


def fill_with_markup(proxy_url: str) -> None:
    send(proxy_url, "claude-sonnet-4-5", "webshop")
    send(proxy_url, "claude-sonnet-4-5", "[/bold]", "[/]")
    send(proxy_url, "claude-sonnet-4-5", HYPERLINK, "[b]s2")
    send(proxy_url, "claude-haiku-4-5", ":warning:")
    send(proxy_url, "[/]")  # a refused request's record keeps the body's model
    send(proxy_url, "\x1b]8;;https://evil.example/\x1b\\x")  # a terminal's own hyperlink
    rows(proxy_url, 6)


def table(config, *args: str) -> str:
    answer = CliRunner(env={"COLUMNS": "80"}).invoke(main, ["report", *args, "--config", str(config)])
    assert answer.exit_code == 0, answer.output
    return answer.output


def names_are_literal(output: str, ask: tuple[str, ...]) -> None:
    lines = output.splitlines()
    labels = {line.split()[0] for line in lines if line.strip()}
    if "project" in ask:
        assert {"[/bold]", ":warning:"} <= labels, output
        assert any(line.lstrip().startswith("[link=https://evil") for line in lines), output
        assert "⚠" not in output
    if "session" in ask:
        assert {"[/]", "[b]s2"} <= labels, output
    if "model" in ask:
        assert "[/]" in labels, output
    assert max(len(line) for line in lines) <= 80 and "\x1b" not in output, output


def test_markup_in_names_is_shown_literally_from_the_server_and_from_the_file(proxy_factory, tmp_path):
    proxy = proxy_factory(observability=STORAGE_ON)
    fill_with_markup(proxy.url)
    config = write_config(tmp_path, 1)
    for ask in ASKS:
        names_are_literal(table(config, *ask, "--url", proxy.url), ask)
    proxy.stop()
    for ask in ASKS:
        names_are_literal(table(config, *ask), ask)
    stored = json.loads(table(config, "project", "--json"))["rows"]
    assert {row["key"] for row in stored} >= {"[/bold]", HYPERLINK, ":warning:", "webshop"}


def test_long_session_ids_are_shown_by_their_start_and_end(proxy_factory, tmp_path):
    # Codex's UUIDv7 ids of sessions started in one minute share their first eight characters.
    sessions = (
        "01a23d1b-2de8-7c41-9d0e-5f6a7b8c9d0e",
        "01a23d1b-4b5f-7a02-8c1d-0e9f8a7b6c5d",
        "nightly-eval-2026-12-03-checkout-run-01",
        "nightly-eval-2026-12-03-checkout-run-02",
    )
    proxy = proxy_factory(observability=STORAGE_ON)
    for session in sessions:
        send(proxy.url, "claude-sonnet-4-5", "webshop", session)
    rows(proxy.url, len(sessions))
    output = table(write_config(tmp_path, 1), "session", "--url", proxy.url)
    labels = [line.split()[0] for line in output.splitlines() if line.startswith(("01a23d1", "nightly"))]
    assert len(labels) == len(set(labels)) == len(sessions), output
    start_and_end = [label.split("…") for label in labels]
    assert all(any(s.startswith(a) and s.endswith(b) for s in sessions) for a, b in start_and_end), output
    assert output.count("$0.0") >= len(sessions) and max(len(line) for line in output.splitlines()) <= 80, output
