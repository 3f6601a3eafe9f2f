"""ccproxy instances as real processes (``ccproxy serve``), and traffic that remembers its request ids."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ccproxy_core.testing import free_port

ANTHROPIC_HEADERS = {"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer test-key"}
MESSAGE = [{"role": "user", "content": "hello from a load balancer"}]


class Instance:
    """One ``ccproxy serve`` process on a free loopback port."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        environment = {k: v for k, v in os.environ.items() if "__" not in k}
        environment.update(env, SERVER__PORT=str(self.port), LOGGING__ACCESS_LOG="false", HOME=str(workdir))
        with open(self.log_path, "wb") as output:  # the child keeps its own copy of the descriptor
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ccproxy_core", "serve"],
                env=environment,
                cwd=workdir,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ccproxy {name} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ccproxy {name} did not answer /health in 60 s")
            time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM (graceful: the writer flushes) and wait."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def send(url: str, kind: str, model: str, status: int | None = None) -> str:
    """One request of ``kind`` (anthropic/openai, json/stream) through ``url``; returns ccproxy's request id."""
    provider, mode = kind.split("-")
    extra = {"x-mock-status": str(status)} if status else {}
    if provider == "anthropic":
        path, headers = "/v1/messages", {**ANTHROPIC_HEADERS, **extra}
        body = {"model": model, "max_tokens": 32, "messages": MESSAGE, "stream": mode == "stream"}
    else:
        path, headers = "/v1/chat/completions", {**OPENAI_HEADERS, **extra}
        body = {"model": model, "messages": MESSAGE, "stream": mode == "stream"}
        if mode == "stream":
            body["stream_options"] = {"include_usage": True}
    with httpx.stream("POST", f"{url}{path}", json=body, headers=headers, timeout=30) as response:
        response.read()
        return response.headers["x-ccproxy-request-id"]


MIXED = [
    ("anthropic-json", "claude-haiku-4-5", None),
    ("anthropic-stream", "claude-opus-4-1", None),
    ("openai-json", "gpt-4o", None),
    ("openai-stream", "gpt-4o-mini", None),
    ("anthropic-json", "claude-haiku-4-5", 429),
    ("openai-json", "gpt-4o", 500),
]


def send_mixed(url: str, rounds: int) -> list[str]:
    """``rounds`` times the six kinds of :data:`MIXED`; returns the request ids."""
    return [send(url, kind, model, status) for _ in range(rounds) for kind, model, status in MIXED]
