"""What reading a request's attribution costs, per request (prints microseconds).

The request shapes are Claude Code's (header, JSON metadata.user_id, a large body that the
proxy decodes anyway for model and stream: only the top-level fields are read here) and
Codex CLI's (session-id header, Bearer key). The JSON decode of the body is not counted: it
is shared with reading model and stream.
"""

import json
import timeit

from ccproxy_core.accounting.attribution import Attributor, key_fingerprint
from ccproxy_core.runtime.attribution_settings import AttributionSettings

SESSION = "5d1f3c2a-8b7e-4f61-9a0c-2e4b6d8f0a13"
CLAUDE_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"accept", b"application/json"),
    (b"x-stainless-retry-count", b"0"),
    (b"x-stainless-timeout", b"600"),
    (b"x-stainless-lang", b"js"),
    (b"x-stainless-package-version", b"0.60.0"),
    (b"x-stainless-os", b"Linux"),
    (b"x-stainless-arch", b"x64"),
    (b"x-stainless-runtime", b"node"),
    (b"x-stainless-runtime-version", b"v20.19.2"),
    (b"anthropic-dangerous-direct-browser-access", b"true"),
    (b"anthropic-version", b"2023-06-01"),
    (b"x-app", b"cli"),
    (b"user-agent", b"claude-cli/2.1.332 (external, sdk-cli)"),
    (b"x-claude-code-session-id", SESSION.encode()),
    (b"content-type", b"application/json"),
    (b"anthropic-beta", b"claude-code-20250219,interleaved-thinking-2025-05-14"),
    (b"x-api-key", b"sk-ant-api03-" + b"x" * 95),
    (b"content-length", b"87000"),
    (b"accept-encoding", b"gzip, deflate, br, zstd"),
]
CLAUDE_BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 32000,
    "stream": True,
    "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": SESSION})},
    "messages": [{"role": "user", "content": "x" * 80_000}],
    "system": [],
    "tools": [],
}
CODEX_HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"authorization", b"Bearer sk-proj-" + b"y" * 120),
    (b"session-id", SESSION.encode()),
    (b"thread-id", SESSION.encode()),
    (b"originator", b"codex_exec"),
    (b"accept", b"text/event-stream"),
    (b"user-agent", b"codex_exec/0.171.0 (Debian 12.0.0; x86_64) unknown (codex_exec; 0.171.0)"),
    (b"content-type", b"application/json"),
    (b"x-ccproxy-project", b"webshop"),
    (b"x-ccproxy-tag-team", b"payments"),
]
CODEX_BODY = {"model": "gpt-5", "stream": True, "input": [], "instructions": "x" * 40_000}


def measure(name: str, attributor: Attributor, headers, body, user_agent: str) -> None:
    runs = 50_000
    best = min(timeit.repeat(lambda: attributor.read(headers, body, user_agent), number=runs, repeat=5)) / runs
    print(f"attribution of one {name} request: {best * 1e6:.2f} us")


def body_decode_for_scale() -> None:
    """The decode the proxy already does for model and stream, which attribution shares, measured alike."""
    raw = json.dumps(CLAUDE_BODY).encode()
    runs = 2_000
    best = min(timeit.repeat(lambda: json.loads(raw), number=runs, repeat=5)) / runs
    print(f"for scale, the shared decode of that {len(raw) // 1024} KiB Claude Code body: {best * 1e6:.2f} us")


def main() -> None:
    named = AttributionSettings(keys={key_fingerprint("sk-ant-api03-" + "x" * 95): "alice-laptop"})
    attributor = Attributor(named)
    measure("Claude Code", attributor, CLAUDE_HEADERS, CLAUDE_BODY, "claude-cli/2.1.332 (external, sdk-cli)")
    measure("Codex CLI", attributor, CODEX_HEADERS, CODEX_BODY, "codex_exec/0.171.0 (Debian 12.0.0; x86_64)")
    body_decode_for_scale()


if __name__ == "__main__":
    main()
