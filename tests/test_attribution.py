"""Attribution read from the real request shapes of each client, and hostile values made safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccproxy_core.accounting.attribution import Attributor, key_fingerprint, parse_user_agent
from ccproxy_core.accounting.attribution.clean import clean_text
from ccproxy_core.runtime.attribution_settings import AttributionSettings

SESSION = "5d1f3c2a-8b7e-4f61-9a0c-2e4b6d8f0a13"
ACCOUNT = "9a8b7c6d-1234-4e5f-8a9b-0c1d2e3f4a5b"
DEVICE = "f" * 64


def read(headers: dict[str, str], body: dict | None = None, settings: AttributionSettings | None = None):
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    return Attributor(settings).read(raw, body, headers.get("user-agent"))


def claude_code_body(user_id: str) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "stream": True,
        "metadata": {"user_id": user_id},
        "messages": [{"role": "user", "content": "say hi"}],
    }


def test_claude_code_header_and_json_user_id():
    user_id = json.dumps({"device_id": DEVICE, "account_uuid": ACCOUNT, "session_id": SESSION})
    dims = read(
        {
            "user-agent": "claude-cli/2.1.332 (external, sdk-cli)",
            "X-Claude-Code-Session-Id": SESSION,
            "x-api-key": "sk-ant-api03-secret",
        },
        claude_code_body(user_id),
    )
    assert (dims.session_id, dims.end_user) == (SESSION, ACCOUNT)
    assert (dims.client_name, dims.client_version) == ("claude-code", "2.1.332")


def test_claude_code_json_user_id_without_the_header():
    user_id = json.dumps({"device_id": DEVICE, "account_uuid": "", "session_id": SESSION})
    dims = read({"user-agent": "claude-cli/2.0.14 (external, cli)"}, claude_code_body(user_id))
    assert (dims.session_id, dims.end_user) == (SESSION, None)


def test_claude_code_legacy_user_id():
    dims = read(
        {"user-agent": "claude-cli/1.0.98 (external, cli)"},
        claude_code_body(f"user_{DEVICE}_account_{ACCOUNT}_session_{SESSION}"),
    )
    assert (dims.session_id, dims.end_user) == (SESSION, ACCOUNT)
    api_key_user = read({}, claude_code_body(f"user_{DEVICE}_account__session_{SESSION}"))
    assert (api_key_user.session_id, api_key_user.end_user) == (SESSION, None)


def test_the_header_wins_over_the_body():
    user_id = json.dumps({"device_id": DEVICE, "account_uuid": ACCOUNT, "session_id": "from-body"})
    dims = read({"x-claude-code-session-id": "from-header", "x-ccproxy-session": "mine"}, claude_code_body(user_id))
    assert dims.session_id == "from-header"


def test_any_other_metadata_user_id_is_the_end_user():
    dims = read({}, claude_code_body("customer-4711"))
    assert (dims.session_id, dims.end_user) == (None, "customer-4711")
    for user_id in ('{"user": "alice"}', '{"email": "bob@example.com", "device_id": "d"}', "{not json"):
        dims = read({}, claude_code_body(user_id))
        assert (dims.session_id, dims.end_user) == (None, user_id)  # as is: no session or account named


def test_openai_end_user_fields_come_before_its_metadata_tags():
    def end_user(body: dict, service_type: str) -> str | None:
        return Attributor().read([], body, None, service_type).end_user

    tagged = {"model": "gpt-5", "safety_identifier": "hashed-8", "user": "u-9", "metadata": {"user_id": "tag"}}
    assert end_user(tagged, "openai") == "hashed-8"
    assert end_user({**tagged, "safety_identifier": None}, "openai") == "u-9"
    assert end_user({"model": "gpt-5", "metadata": {"user_id": '{"team": "red"}'}}, "openai") == '{"team": "red"}'
    assert end_user(tagged, "anthropic") == "tag"  # Anthropic documents metadata.user_id alone


@pytest.mark.parametrize("header", ["session_id", "session-id"])
def test_codex_session_headers(header):
    dims = read(
        {
            "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)",
            header: SESSION,
            "originator": "codex_exec",
            "authorization": "Bearer sk-proj-abc",
        },
        {"model": "gpt-5", "stream": True, "input": []},
    )
    assert dims.session_id == SESSION
    assert (dims.client_name, dims.client_version) == ("codex", "0.171.0")


def test_own_session_header_and_openai_end_user():
    dims = read({"x-ccproxy-session": "nightly-eval-7"}, {"model": "gpt-4o", "user": "user-42"})
    assert (dims.session_id, dims.end_user) == ("nightly-eval-7", "user-42")
    safety = read({}, {"model": "gpt-4o", "safety_identifier": "hash-of-user", "user": "older"})
    assert safety.end_user == "hash-of-user"


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("claude-cli/2.1.332 (external, sdk-cli)", ("claude-code", "2.1.332")),
        ("codex_cli_rs/0.171.0 (Ubuntu 24.4.0; x86_64) xterm-256color", ("codex", "0.171.0")),
        ("codex_exec/0.171.0 (Debian 12.0.0; x86_64)", ("codex", "0.171.0")),
        ("Anthropic/Python 2.10.0", ("anthropic-python", "2.10.0")),
        ("AsyncAnthropic/Python 2.10.0", ("anthropic-python", "2.10.0")),
        ("OpenAI/Python 3.51.0", ("openai-python", "3.51.0")),
        ("AsyncOpenAI/Python 3.51.0", ("openai-python", "3.51.0")),
        ("Anthropic/JS 0.71.2", ("anthropic-js", "0.71.2")),
        ("OpenAI/JS 6.9.1", ("openai-js", "6.9.1")),
        ("Anthropic/Go 1.19.0", ("anthropic-go", "1.19.0")),
        ("OpenAI/Go 3.8.1", ("openai-go", "3.8.1")),
        ("Anthropic/Java 2.11.1", ("anthropic-java", "2.11.1")),
        ("OpenAI/Java 4.8.0", ("openai-java", "4.8.0")),
        ("curl/8.14.1", ("curl", "8.14.1")),
        ("python-httpx/0.28.1", ("python-httpx", "0.28.1")),
        ("Mozilla/5.0 (X11; Linux x86_64)", ("Mozilla", "5.0")),
        ("my-tool", ("my-tool", None)),
        ("", (None, None)),
        (None, (None, None)),
        ("(nothing)", (None, None)),
        # A name that is no product token names no client: before, both were "team-", one client in the tables.
        ("team-\u03b1/1.0", (None, None)),
        ("team-\u03b2/2.0 (linux)", (None, None)),
        ("工具/9.9", (None, None)),
        ("my-tool/", ("my-tool", None)),
    ],
)
def test_user_agents(user_agent, expected):
    assert parse_user_agent(user_agent) == expected


def test_key_fingerprint_is_short_keyed_and_never_the_key():
    key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789"
    dims = read({"x-api-key": key})
    assert dims.api_key_id == key_fingerprint(key) and len(dims.api_key_id) == 12
    assert dims.api_key_id not in key and key[:6] not in dims.api_key_id
    assert read({"authorization": f"Bearer {key}"}).api_key_id == dims.api_key_id
    assert key_fingerprint(key, b"another install's salt") != dims.api_key_id
    assert read({"authorization": "Basic dXNlcjpwYXNz"}).api_key_id is None


@pytest.mark.parametrize(
    "headers",
    [
        {"api-key": "sk-azure-client-0123456789"},
        {"x-goog-api-key": "sk-azure-client-0123456789"},
        {"sec-websocket-protocol": "realtime, openai-insecure-api-key.sk-azure-client-0123456789"},
    ],
)
def test_the_key_is_read_from_every_header_a_client_sends_it_in(headers):
    assert read(headers).api_key_id == key_fingerprint("sk-azure-client-0123456789")


def test_configured_key_names_and_projects():
    alice, ci = key_fingerprint("sk-alice"), key_fingerprint("sk-ci")
    settings = AttributionSettings(keys={alice: "alice-laptop", ci: {"name": "ci", "project": "backend"}})
    assert (read({"x-api-key": "sk-alice"}, settings=settings).api_key_name) == "alice-laptop"
    dims = read({"authorization": "Bearer sk-ci"}, settings=settings)
    assert (dims.api_key_name, dims.project) == ("ci", "backend")
    explicit = read({"authorization": "Bearer sk-ci", "x-ccproxy-project": "frontend"}, settings=settings)
    assert explicit.project == "frontend"


def test_a_key_in_place_of_a_fingerprint_is_refused_without_echoing_it():
    with pytest.raises(ValueError, match="ccproxy key-id") as refused:
        AttributionSettings(keys={"sk-ant-api03-secret": "oops"})
    assert "secret" not in refused.value.errors()[0]["msg"]  # what `ccproxy serve` prints


def test_tags_are_bounded_in_count_length_and_name():
    headers = {f"x-ccproxy-tag-t{i}": f"v{i}" for i in range(30)}
    headers["x-ccproxy-tag-long"] = "x" * 1000
    dims = read(headers)
    assert len(dims.tags) == 10 and dims.tags["t0"] == "v0"
    assert read({"x-ccproxy-tag-feature": "x" * 1000}).tags["feature"] == "x" * 128
    assert read({"x-ccproxy-tag-bad name!": "v"}).tags == {}
    assert read({"x-ccproxy-tag-": "v"}).tags == {}


def test_an_attribution_header_given_twice_counts_by_its_first_copy_tags_too():
    raw = [
        (b"x-ccproxy-project", b"p-one"),
        (b"x-ccproxy-tag-team", b"t1"),
        (b"x-ccproxy-project", b"p-two"),
        (b"x-ccproxy-tag-team", b"t2"),
    ]
    dims = Attributor(None).read(raw, None, None)
    assert (dims.project, dims.tags) == ("p-one", {"team": "t1"})


def test_hostile_values_are_made_safe():
    dims = read(
        {"x-ccproxy-project": "a\x1b[31mred\x00", "x-ccproxy-session": "s" * 5000, "x-ccproxy-tag-team": "caf\xc3\xa9"}
    )
    assert dims.project == "a\\x1b[31mred\\x00"
    assert len(dims.session_id) == 128
    assert dims.tags["team"] == "café"
    body = read({}, {"model": "m", "metadata": {"user_id": '{"session_id": "\\ud800x", "account_uuid": 7}'}})
    assert body.session_id == "\ufffdx" and body.end_user is None
    invalid_utf8 = read({"x-ccproxy-project": "\xff\xfe"})
    invalid_utf8.project.encode("utf-8")
    for value in (None, 12, "", "   ", ["list"]):
        assert clean_text(value, 10) is None
    assert read({}, {"model": "m", "metadata": {"user_id": "{" + "[" * 100000}}).session_id is None
    # U+2028 and U+2029 end a line in JavaScript and some log viewers: escaped like control characters.
    separators = read({"x-ccproxy-project": "a\xe2\x80\xa8b\xe2\x80\xa9c"})  # their UTF-8, as a header carries it
    assert separators.project == "a\\u2028b\\u2029c"


def test_the_start_up_error_for_a_pasted_key_names_the_setting_and_not_the_key(tmp_path):
    (tmp_path / "empty.toml").write_text("")
    env = {
        **os.environ,
        "ATTRIBUTION__KEYS": '{"sk-ant-api03-topsecret": "alice"}',
        "CCPROXY_CONFIG": str(tmp_path / "empty.toml"),
    }
    answer = subprocess.run(
        [str(Path(sys.executable).parent / "ccproxy"), "config", "show"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert answer.returncode == 2 and "ATTRIBUTION__KEYS" in answer.stderr and "ccproxy key-id" in answer.stderr
    assert "topsecret" not in answer.stderr + answer.stdout


def test_a_lone_surrogate_in_an_attribution_value_becomes_the_replacement_character():
    # JSON allows "\ud800" and UTF-8 does not; the model and every other field show U+FFFD too.
    assert clean_text("user_\ud800x", 20) == "user_\ufffdx"
