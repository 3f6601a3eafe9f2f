"""Credentials stay hidden at rest: `config show` masks every one, ccproxy's files are its owner's alone,
and secret-looking query parameters and error texts are redacted wherever a record goes."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ccproxy_core.safe_values import redact_query, safe_error_text, safe_text
from ccproxy_core.testing import wait_until
from tests.test_reliability_signals import ServeProcess

CCPROXY = str(Path(sys.executable).with_name("ccproxy"))


def test_config_show_masks_every_credential(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "OBSERVABILITY__PUSHGATEWAY_URL": "http://pushuser:pushPASS1@gateway:9091",
        "UPSTREAM__OPENAI_API_KEY": "sk-proj-PASS4",
        "UPSTREAM__ANTHROPIC_API_KEY": "sk-ant-PASS5",
        "SECURITY__AUTH_TOKEN": "tokenPASS6",
    }
    shown = subprocess.run(
        [CCPROXY, "config", "show"], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert "PASS" not in shown.stdout, shown.stdout
    settings = json.loads(shown.stdout)
    assert settings["observability"]["pushgateway_url"] == "http://***@gateway:9091"


def test_a_refused_setting_is_named_without_its_credentials(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
        "UPSTREAM__OPENAI_BASE_URL": "https://gwuser:gwPASS2@corp-gateway.example/v1?key=qkPASS3",
        "SECURITY__AUTH_TOKEN": "",
    }
    shown = subprocess.run([CCPROXY, "config", "show"], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert shown.returncode == 2 and "UPSTREAM__OPENAI_BASE_URL" in shown.stderr
    assert "PASS" not in shown.stderr, shown.stderr


def test_an_empty_token_stops_serve_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path), "SECURITY__AUTH_TOKEN": ""}
    result = subprocess.run(
        [CCPROXY, "serve", "--port", "0"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "SECURITY__AUTH_TOKEN" in result.stderr and "empty" in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX permissions")
def test_files_and_folders_ccproxy_creates_are_owner_only(tmp_path, upstream):
    database = tmp_path / "new" / "deeper" / "log.duckdb"
    server = ServeProcess(
        tmp_path,
        {
            "UPSTREAM__ANTHROPIC_BASE_URL": upstream.url,
            "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
            "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
            "OBSERVABILITY__DUCKDB_PATH": str(database),
            "OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS": "0.05",
        },
    ).start()
    try:
        body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        httpx.post(server.url + "/v1/messages", json=body, headers={"x-api-key": "k"})
        wait_until(lambda: httpx.get(server.url + "/logs/status").json()["rows_written"] == 1)
        created = [
            database.parent,
            database.parent.parent,
            database,
            *[path for path in database.parent.iterdir() if path != database],
        ]
        for path in created:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path} is {oct(mode)}: others can read it"
    finally:
        server.stop()


def test_secret_query_parameters_are_redacted():
    query = b"key=a1&token=b2&api_key=c3&sig=d4&X-Amz-Signature=e5&secret=f6&password=g7&auth=h8&pass=i9&pw=j0&page=2"
    redacted = redact_query(query, 2048)
    assert not any(secret in redacted for secret in ("a1", "b2", "c3", "d4", "e5", "f6", "g7", "h8", "i9", "j0"))
    assert "page=2" in redacted


def test_token_counts_are_not_taken_for_tokens():
    # An error quoting a request's limits is what an operator reads in "Recent errors": a count is not a secret.
    safe = safe_error_text("max_tokens=100000 > 64000, max_output_tokens=9; access_token=LEAK", 1000)
    assert "max_tokens=100000" in safe and "max_output_tokens=9" in safe and "LEAK" not in safe
    assert redact_query(b"max_tokens=5&refresh_token=LEAK", 100) == "max_tokens=5&refresh_token=***"
    for name in ("tokens", "access_tokens", "id_tokens", "tokenstring"):  # credentials, not counts
        assert redact_query(f"{name}=LEAK".encode(), 100) == f"{name}=***"


def test_the_upstream_clients_own_error_text_loses_its_secrets():
    # aiohttp's ClientResponseError prints the whole URL, query included
    text = (
        "400, message='Bad Request', url='https://user:pw@api.example/v1/messages?key=sk-ant-LEAK1&sig=LEAK2' "
        "Authorization: Bearer LEAK3\r\nforged"
    )
    safe = safe_error_text(text, 1000)
    assert "LEAK" not in safe and "user:pw" not in safe and "\r\n" not in safe


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("x" * 3000 + " api_key=LEAK1 after", ["after", "x" * 3000], ["LEAK1"]),
        ("see my.session-id=LEAK2 and page_size=20", ["page_size=20"], ["LEAK2"]),
        ("a=" * 1500 + "tokenish=LEAK3", [], ["LEAK3"]),
        ("http://" + "u" * 3000 + " then https://me:LEAK4@host/", ["u" * 3000], ["LEAK4"]),
        ("keykeykey" * 300 + "=LEAK5", [], ["LEAK5"]),
    ],
)
def test_secrets_are_masked_wherever_long_runs_of_text_put_them(text, kept, gone):
    # Provider error messages are the provider's to write: long runs of name-like characters, with
    # or without a secret after them, must be read in one pass and masked all the same.
    safe = safe_error_text(text, 10_000)
    assert all(part in safe for part in kept) and not any(secret in safe for secret in gone)


def test_config_show_masks_a_plugins_credential_typed_as_a_plain_string():
    from ccproxy_core.runtime.cli import _masked

    plugin = {
        "api_key": "ok-SECRETKEY-str",
        "db_password": "hunter2",
        "credentials": {"slack": "xoxb-1234-abcd", "bot": "plainsecretvalue"},
        "max_tokens": 5,
        # Named after a credential's word, but no credential: shown.
        "token_url": "https://auth.example/token",
        "password_file": "/etc/ccproxy/pw",
        "max_tokens_per_request": "4096",
        "cache_key_prefix": "ccp",
        "team": "x",
    }
    shown = _masked({"plugins": {"billing": plugin}, "attribution": {"keys": {"0123abcd4567": "team-a"}}})
    masked = "**********"
    assert shown["plugins"]["billing"] == {
        **plugin,
        "api_key": masked,
        "db_password": masked,
        "credentials": {"slack": masked, "bot": masked},
    }
    assert shown["attribution"] == {"keys": {"0123abcd4567": "team-a"}}  # fingerprints and names, no keys


@pytest.mark.parametrize("password", ["hunter2", "hun@ter2", "hun/ter2", "hun'ter2", 'hun"ter>2', "hu@n/t'er2@"])
def test_a_url_password_in_an_error_message_is_masked_whatever_it_holds(password):
    # A URL parser takes the user part up to the authority's last "@"; quotes and slashes may be in it unescaped.
    safe = safe_error_text(f"Error while downloading https://bob:{password}@files.internal/img.png. Retry", 1000)
    assert "ter2" not in safe and "https://***@files.internal/img.png. Retry" in safe


def test_a_url_without_credentials_keeps_its_host():
    safe = safe_error_text("cannot reach https://files.internal/img.png (or 'http://a/b'), try again", 1000)
    assert safe == "cannot reach https://files.internal/img.png (or 'http://a/b'), try again"


@pytest.mark.parametrize("before", [956, 958, 965, 1955, 1960])  # the "@" at the cut, past it, past twice the cap
def test_a_url_cut_before_its_at_sign_is_masked_to_the_cut(before):
    # The provider's reader cuts an error message to 1,000 characters before it is masked: a URL placed to
    # run into the cut has lost its "@", and its password would stand alone. Before: "https://bob:hunter2…".
    message = "y" * before + "Error while downloading https://bob:hunter2@files.internal/img.png is not reachable"
    for cut in (safe_text(message, 1000), message):
        safe = safe_error_text(cut, 1000)
        assert "hun" not in safe and "bob" not in safe and len(safe) <= 1000


def test_a_url_password_at_the_cut_of_a_responses_incomplete_reason_is_masked():
    from ccproxy_core.accounting.usage import usage_from_json

    reason = "y" * 160 + " https://bob:hunter2secret@files.internal/img.png was not reachable"  # cut at "hunte"
    body = {"object": "response", "status": "incomplete", "error": None, "incomplete_details": {"reason": reason}}
    message = usage_from_json("openai", json.dumps(body).encode(), "responses").error_message
    # Before: cut to 200 characters without an ellipsis, "https://bob:hunter2secret" stood in the record.
    assert "bob:hu" not in safe_error_text(message, 1000) and "https://***" in safe_error_text(message, 1000)
