"""``ccproxy serve --workers N`` as a real process, and a mixed load from the real SDKs that remembers who served what."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anthropic
import httpx
import openai

from ccproxy_core.testing import wait_until
from tests.test_reliability_signals import ServeProcess

CLAUDE, GPT = "claude-haiku-4-5", "gpt-4o-mini"
HELLO = [{"role": "user", "content": "hello from one of several workers"}]
KINDS = (
    "anthropic-json",
    "anthropic-stream",
    "openai-json",
    "openai-stream",
    "anthropic-429",
    "openai-500",
    "anthropic-stream-error",
)


def serve_workers(workdir: Path, env: dict[str, str], count: int = 2, run_under: tuple[str, ...] = ()) -> ServeProcess:
    """``ccproxy serve --workers count`` (run by ``run_under``, ``nohup`` say), started, with every worker running."""
    command = [*run_under, sys.executable, "-m", "ccproxy_core", "serve", "--workers", str(count)]
    server = ServeProcess(workdir, env, command).start(timeout=60)
    answering: set[int] = set()

    def every_worker_answers() -> bool:  # a new connection each time: whichever worker accepts it answers
        answering.add(httpx.get(server.url + "/health", timeout=10).json()["worker"])
        return answering == worker_pids(server) and len(answering) == count

    wait_until(every_worker_answers, timeout=90, interval=0.01)
    return server


def worker_pids(server: ServeProcess) -> set[int]:
    """The pids of the server's worker processes (its children, on Linux)."""
    pid = server.process.pid
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()


def served(headers: httpx.Headers) -> tuple[str, int]:
    """ccproxy's request id and the pid of the worker that served it."""
    return headers["x-ccproxy-request-id"], int(headers["x-ccproxy-worker"])


def one_request(url: str, kind: str) -> tuple[str, int]:
    """One request of ``kind`` through the real SDK on a connection of its own."""
    if kind.startswith("anthropic"):
        with anthropic.Anthropic(base_url=url, api_key="sk-ant-workers", max_retries=0) as client:
            return _anthropic(client, kind)
    with openai.OpenAI(base_url=url + "/v1", api_key="sk-workers", max_retries=0) as client:
        return _openai(client, kind)


def _anthropic(client: anthropic.Anthropic, kind: str) -> tuple[str, int]:
    if kind == "anthropic-json":
        return served(client.messages.with_raw_response.create(model=CLAUDE, max_tokens=20, messages=HELLO).headers)
    if kind == "anthropic-429":
        try:
            client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO, extra_headers={"x-mock-status": "429"})
        except anthropic.RateLimitError as refused:
            return served(refused.response.headers)
        raise AssertionError("the mock's 429 did not reach the client")
    faults = {"x-mock-stream-error-after": "2"} if kind == "anthropic-stream-error" else {}
    stream = client.messages.create(model=CLAUDE, max_tokens=20, messages=HELLO, stream=True, extra_headers=faults)
    try:
        for _ in stream:
            pass
    except anthropic.APIStatusError:
        assert faults, "a stream without an injected fault failed"
    return served(stream.response.headers)


def _openai(client: openai.OpenAI, kind: str) -> tuple[str, int]:
    if kind == "openai-json":
        return served(client.chat.completions.with_raw_response.create(model=GPT, messages=HELLO).headers)
    if kind == "openai-500":
        try:
            client.chat.completions.create(model=GPT, messages=HELLO, extra_headers={"x-mock-status": "500"})
        except openai.InternalServerError as failed:
            return served(failed.response.headers)
        raise AssertionError("the mock's 500 did not reach the client")
    stream = client.chat.completions.create(
        model=GPT, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    for _ in stream:
        pass
    return served(stream.response.headers)


def mixed_load(url: str, rounds: int, connections: int = 8) -> list[tuple[str, int]]:
    """``rounds`` of every kind in :data:`KINDS`, sent from ``connections`` threads at once."""
    kinds = [kind for _ in range(rounds) for kind in KINDS]
    with ThreadPoolExecutor(connections) as pool:
        return list(pool.map(lambda kind: one_request(url, kind), kinds))


def logged_ids(url: str) -> list[str]:
    """Every request id /logs/query returns (one row per stored record)."""
    body = httpx.get(url + "/logs/query", params={"limit": 10_000}, timeout=30).json()
    return [row["request_id"] for row in body["results"]]
