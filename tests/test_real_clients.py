"""The real command-line clients, Claude Code and Codex CLI, run offline through ccproxy against the mock.

Installed by ``make real-clients`` (``make test`` does it) from real-clients/package.json;
skipped only when Node.js or npm is missing. Each client gets a fresh HOME, so nothing of
the machine's own configuration or credentials is used.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CLIENTS_DIR = Path(__file__).resolve().parent.parent / "real-clients"
BIN = CLIENTS_DIR / "node_modules" / ".bin"
MOCK_TEXT = "This is a deterministic answer from the ccproxy mock upstream"

pytestmark = [
    pytest.mark.needs_tool("node", "npm"),  # the real Claude Code and Codex CLI run on Node.js
    pytest.mark.timeout(600),
]


@pytest.fixture(scope="module")
def clients() -> Path:
    """The pinned clients, installed with ``npm ci`` when ``make real-clients`` has not run yet."""
    if not (BIN / "claude").exists() or not (BIN / "codex").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENTS_DIR, check=True, timeout=540)
    return BIN


def run(command: list[str], home: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8", **env}
    return subprocess.run(command, cwd=home, env=environment, capture_output=True, text=True, timeout=300, check=False)


def test_claude_code_print_mode_through_ccproxy(clients, proxy, upstream, recorder, tmp_path):
    upstream.clear_requests()
    done = run(
        [str(clients / "claude"), "-p", "say hi", "--model", "claude-sonnet-4-6"],
        tmp_path,
        ANTHROPIC_BASE_URL=proxy.url,
        ANTHROPIC_API_KEY="sk-ant-any",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        DISABLE_AUTOUPDATER="1",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert MOCK_TEXT in done.stdout
    records = recorder.wait_for_ends(1)
    messages = [r for r in records if r.endpoint == "/v1/messages"]
    assert messages and all(r.status_code == 200 and r.error_type is None for r in records)
    answer = messages[-1]
    assert (
        answer.user_agent.startswith("claude-cli/2.1.332") and answer.streaming and answer.model == "claude-sonnet-4-6"
    )
    assert answer.tokens_input > 1000 and answer.tokens_output > 0 and answer.cost_usd > 0
    received = [r for r in upstream.requests() if r.path == "/v1/messages"]
    assert received and received[-1].query == "beta=true" and received[-1].header("x-claude-code-session-id")


def codex_home(home: Path, proxy_url: str, websockets: bool) -> None:
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text(
        'model = "gpt-5"\nmodel_provider = "ccproxy"\n\n[model_providers.ccproxy]\nname = "ccproxy"\n'
        f'base_url = "{proxy_url}/v1"\nenv_key = "OPENAI_API_KEY"\nwire_api = "responses"\n'
        f"supports_websockets = {'true' if websockets else 'false'}\n"
    )


def run_codex(clients: Path, home: Path) -> subprocess.CompletedProcess:
    return run([str(clients / "codex"), "exec", "--skip-git-repo-check", "say hi"], home, OPENAI_API_KEY="sk-proj-any")


def test_codex_exec_over_https_through_ccproxy(clients, proxy, upstream, recorder, tmp_path):
    upstream.clear_requests()
    codex_home(tmp_path, proxy.url, websockets=False)
    done = run_codex(clients, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert MOCK_TEXT in done.stdout
    [record] = [r for r in recorder.wait_for_ends(1) if r.endpoint == "/v1/responses"]
    assert (record.method, record.model, record.streaming, record.status_code, record.error_type) == (
        "POST",
        "gpt-5",
        True,
        200,
        None,
    )
    assert record.user_agent.startswith("codex_exec/0.171.0") and record.tokens_output > 0 and record.cost_usd > 0
    [received] = [r for r in upstream.requests() if r.path == "/v1/responses"]
    assert received.header("originator") == "codex_exec" and received.header("session-id")


def test_codex_exec_over_the_responses_websocket_through_ccproxy(clients, proxy, upstream, recorder, tmp_path):
    upstream.clear_requests()
    codex_home(tmp_path, proxy.url, websockets=True)
    done = run_codex(clients, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert MOCK_TEXT in done.stdout
    records = recorder.wait_for_ends(2)
    # No fallback to HTTPS: every answer went over the one forwarded WebSocket.
    assert {(r.method, r.endpoint, r.status_code, r.error_type) for r in records} == {
        ("WEBSOCKET", "/v1/responses", 200, None)
    }
    assert records[-1].tokens_output > 0 and all(r.model == "gpt-5" and r.cost_usd is not None for r in records)
    upgrades = [r for r in upstream.requests() if r.path == "/v1/responses"]
    assert [r.method for r in upgrades] == ["GET"]
    assert upgrades[0].header("originator") == "codex_exec" and upgrades[0].header("openai-beta").startswith(
        "responses_websockets="
    )
