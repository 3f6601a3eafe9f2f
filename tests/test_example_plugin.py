"""The example third-party plugin (examples/ccproxy-jsonl), installed with pip and run as a user runs it.

Nothing in ccproxy knows about it: pip puts it in a site folder of its own, and ccproxy
finds it through its entry point when that folder is on PYTHONPATH.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from ccproxy_core.testing import free_port, wait_until
from tests.plugin_install import install_beside_ccproxy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ccproxy-jsonl"
EXAMPLE_VERSION = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["version"]
ANTHROPIC_MESSAGE = {"model": "claude-sonnet-4-6", "max_tokens": 30, "messages": [{"role": "user", "content": "hello"}]}
OPENAI_MESSAGE = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def example_source(tmp_path_factory) -> Path:
    """A copy of the example project, so building it leaves nothing in the repository."""
    copy = tmp_path_factory.mktemp("jsonl-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    return copy


@pytest.fixture(scope="module")
def site(example_source, tmp_path_factory) -> Path:
    """The site-packages holding ccproxy-jsonl as pip installed it, its dependencies resolved against this ccproxy."""
    installed = install_beside_ccproxy([example_source], tmp_path_factory.mktemp("jsonl"))
    assert (installed / f"ccproxy_jsonl-{EXAMPLE_VERSION}.dist-info" / "entry_points.txt").is_file()
    return installed


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    """The machine's environment without ccproxy settings, with ``site`` importable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if "__" not in key and key not in ("PYTHONPATH", "CCPROXY_CONFIG")
    }
    env.update(PYTHONPATH=str(site), XDG_CONFIG_HOME=str(site.parent / "no-config"), **extra)
    return env


def ccproxy(site: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "ccproxy_core", *args]
    return subprocess.run(command, capture_output=True, text=True, env=plugin_env(site, **env), cwd=cwd, timeout=120)


def listed_plugins(site: Path, cwd: Path, **env: str) -> dict[str, dict]:
    result = ccproxy(site, "plugins", "list", "--json", cwd=cwd, **env)
    assert result.returncode == 0, result.stderr
    return {plugin["name"]: plugin for plugin in json.loads(result.stdout)}


def test_plugins_list_shows_it_with_its_distribution_and_version(site, tmp_path):
    jsonl = listed_plugins(site, tmp_path)["jsonl"]
    assert (jsonl["distribution"], jsonl["version"]) == ("ccproxy-jsonl", EXAMPLE_VERSION)
    assert jsonl["enabled"] is True and jsonl["reason"] == "installed" and jsonl["error"] is None
    assert jsonl["hooks"] == ["on_request_end", "on_shutdown", "on_startup", "register_plugin"]


def test_plugins_list_shows_it_disabled_by_name(site, tmp_path):
    jsonl = listed_plugins(site, tmp_path, PLUGINS__DISABLED="jsonl")["jsonl"]
    assert jsonl["enabled"] is False and jsonl["reason"] == "disabled by name (PLUGINS__DISABLED)"
    assert jsonl["distribution"] == "ccproxy-jsonl"


def test_without_the_site_folder_it_is_not_there(site, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "ccproxy_core", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env={**plugin_env(site), "PYTHONPATH": ""},
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 0 and "jsonl" not in {p["name"] for p in json.loads(result.stdout)}


# uvicorn shuts down gracefully on SIGTERM, then re-raises the signal, so the exit status may say so.
STOPPED_BY_SIGTERM = (0, -signal.SIGTERM)


class ServerProcess:
    """``python -m ccproxy_core serve --mock-upstream`` in a subprocess, its output in a file."""

    def __init__(self, site: Path, workdir: Path, env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.output_path = workdir / f"server-{port}.log"
        command = [
            sys.executable,
            "-m",
            "ccproxy_core",
            "serve",
            "--port",
            str(port),
            "--mock-upstream",
            str(free_port()),
        ]
        with open(self.output_path, "wb") as output:
            self.process = subprocess.Popen(
                command, env=plugin_env(site, **env), cwd=workdir, stdout=output, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def wait_until_ready(self, timeout: float = 30.0) -> None:
        def answers() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"ccproxy exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.TransportError):
                return httpx.get(self.url + "/health", timeout=2).status_code == 200
            return False

        wait_until(answers, timeout=timeout, interval=0.05)

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, as a service manager stops it; return the exit code once it has shut down."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def serving(site: Path, workdir: Path, **env: str) -> Iterator[ServerProcess]:
    """A ready server; killed on the way out whatever happened, its output attached to a failure."""
    server = ServerProcess(site, workdir, {"LOGGING__ACCESS_LOG": "false", **env})
    try:
        server.wait_until_ready()
        yield server
    except BaseException as exc:
        server.kill()
        exc.add_note(f"ccproxy output:\n{server.output()}")
        raise
    finally:
        server.kill()


def send_sdk_traffic(url: str) -> dict[str, tuple[str, bool, int]]:
    """Requests through the real SDKs, streamed and not, one failing per provider: request_id -> what was sent."""
    claude = anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0)
    gpt = openai.OpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
    sent = {}
    for _ in range(2):
        sent[claude.messages.with_raw_response.create(**ANTHROPIC_MESSAGE).headers["x-ccproxy-request-id"]] = (
            "anthropic",
            False,
            200,
        )
    with claude.messages.with_streaming_response.create(**ANTHROPIC_MESSAGE, stream=True) as response:
        assert any(event.type == "message_stop" for event in response.parse())
        sent[response.headers["x-ccproxy-request-id"]] = ("anthropic", True, 200)
    with pytest.raises(anthropic.APIStatusError) as failure:
        claude.messages.create(**ANTHROPIC_MESSAGE, extra_headers={"x-mock-status": "529"})
    sent[failure.value.response.headers["x-ccproxy-request-id"]] = ("anthropic", False, 529)
    sent[gpt.chat.completions.with_raw_response.create(**OPENAI_MESSAGE).headers["x-ccproxy-request-id"]] = (
        "openai",
        False,
        200,
    )
    usage_please = {"stream_options": {"include_usage": True}}
    with gpt.chat.completions.with_streaming_response.create(**OPENAI_MESSAGE, stream=True, **usage_please) as response:
        assert list(response.parse())
        sent[response.headers["x-ccproxy-request-id"]] = ("openai", True, 200)
    with pytest.raises(openai.RateLimitError) as limited:
        gpt.chat.completions.create(**OPENAI_MESSAGE, extra_headers={"x-mock-status": "429"})
    sent[limited.value.response.headers["x-ccproxy-request-id"]] = ("openai", False, 429)
    return sent


def complete_lines(path: Path) -> list[str]:
    """The lines written so far; a line still being written (no newline yet) is not one."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()


def test_a_real_server_writes_one_line_per_request_live_and_on_sigterm(site, tmp_path):
    path = tmp_path / "export" / "access.jsonl"
    with serving(site, tmp_path, PLUGINS__JSONL__PATH=str(path)) as server:
        assert "jsonl" in httpx.get(server.url + "/health").json()["plugins"]
        sent = send_sdk_traffic(server.url)
        assert len(sent) == 7
        wait_until(lambda: len(complete_lines(path)) >= len(sent), timeout=20)  # written while serving
        sent.update(send_sdk_traffic(server.url))  # then stop at once: what is still queued is written on shutdown
        assert server.terminate() in STOPPED_BY_SIGTERM
    records = [json.loads(line) for line in complete_lines(path)]
    assert len(records) == len(sent) == 14
    assert {r["request_id"]: (r["service_type"], r["streaming"], r["status_code"]) for r in records} == sent
    for record in records:
        assert record["endpoint"] in ("/v1/messages", "/v1/chat/completions")
        assert "sk-ant-test" not in json.dumps(record) and "sk-test" not in json.dumps(record)
    assert all(r["tokens_output"] > 0 for r in records if r["status_code"] == 200)


def test_disabled_by_name_it_writes_nothing(site, tmp_path):
    path = tmp_path / "export" / "access.jsonl"
    with serving(site, tmp_path, PLUGINS__JSONL__PATH=str(path), PLUGINS__DISABLED="jsonl") as server:
        assert "jsonl" not in httpx.get(server.url + "/health").json()["plugins"]
        claude = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0)
        assert claude.messages.create(**ANTHROPIC_MESSAGE).usage.output_tokens > 0
        assert server.terminate() in STOPPED_BY_SIGTERM
    assert not path.parent.exists()


def test_a_bad_plugin_setting_stops_serve_with_one_line(site, tmp_path):
    result = ccproxy(
        site,
        "serve",
        "--port",
        "0",
        cwd=tmp_path,
        PLUGINS__JSONL__MAX_BYTES="10",
        PLUGINS__JSONL__PATH=str(tmp_path / "access.jsonl"),
    )
    assert result.returncode == 2, result.stderr
    assert (
        "invalid setting PLUGINS__JSONL__MAX_BYTES='10': Input should be greater than or equal to 1024" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_its_table_in_the_config_file_is_read_checked_and_shown(site, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[plugins.jsonl]\npath = "/srv/export/access.jsonl"\nbackups = 2\n')
    shown = ccproxy(site, "config", "show", "--config", str(config), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["plugins"]["jsonl"] == {
        "path": "/srv/export/access.jsonl",
        "max_bytes": 104857600,
        "backups": 2,
        "queue_size": 10000,
    }
    config.write_text("[plugins.jsonl]\nbackup = 2\n")
    refused = ccproxy(site, "config", "show", "--config", str(config), cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: unknown setting PLUGINS__JSONL__BACKUP (or plugins.jsonl.backup in a config file): "
        "did you mean PLUGINS__JSONL__BACKUPS?\n"
    )


def test_its_own_test_suite_passes_with_ccproxys_pytest_fixtures(site, example_source, tmp_path):
    tests = example_source / "tests"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)]
    result = subprocess.run(command, capture_output=True, text=True, env=plugin_env(site), cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) >= 9, result.stdout
