"""Every mock fault through a real ccproxy, and the row each one leaves in a real DuckDB file.

Costs are worked out here by hand from the providers' published prices (USD per million
tokens unless said), never taken from ccproxy's price book. The mock's counts: a prompt of
40 characters is 10 input tokens; an answer of 20 deltas is 60 output tokens.
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import httpx

from ccproxy_core.testing import wait_until

STORAGE_ON = {"logs_collection_enabled": True, "logs_endpoints_enabled": True, "log_flush_interval_seconds": 0.05}
PROMPT = "abcd" * 10  # 40 characters: 10 input tokens
MTOK = Decimal(1_000_000)
IN, OUT = 10, 60

ANTHROPIC = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": "Bearer sk-test"}


def by_hand(
    input_rate: str, output_rate: str, input_tokens: int = IN, output_tokens: int = OUT, tools: str = "0"
) -> Decimal:
    return input_tokens * Decimal(input_rate) / MTOK + output_tokens * Decimal(output_rate) / MTOK + Decimal(tools)


# Claude Haiku 4.5: $1 input, $5 output (anthropic.com/pricing).
HAIKU = by_hand("1", "5")  # 10 x $1 + 60 x $5 per MTok = $0.00031
# gpt-4o-mini: $0.15 input, $0.60 output (openai.com/api/pricing).
GPT_4O_MINI = by_hand("0.15", "0.60")  # 10 x 0.15 + 60 x 0.60 per MTok = $0.0000375

# (name, provider, model, stream, mock headers, expected columns)
CASES = [
    (
        "a-json",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {},
        {"status_code": 200, "error_type": None, "cost_usd": HAIKU, "priced": True},
    ),
    (
        "a-stream",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {},
        {"status_code": 200, "error_type": None, "cost_usd": HAIKU, "tokens_output": OUT},
    ),
    (
        "a-status-529",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-status": "529"},
        {"status_code": 529, "error_type": "overloaded_error", "cost_usd": None, "priced": False},
    ),
    (
        "a-status-429-retry",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-status": "429", "x-mock-retry-after": "3"},
        {"status_code": 429, "error_type": "rate_limit_error"},
    ),
    (
        "a-status-typed",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-status": "500", "x-mock-error-type": "api_error"},
        {"status_code": 500, "error_type": "api_error"},
    ),
    (
        "a-stream-error",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-stream-error-after": "2"},
        {
            "status_code": 200,
            "error_type": "overloaded_error",
            "error_message": "Overloaded",
            "upstream_status": 200,
            "tokens_input": IN,
            "tokens_output": None,  # message_start's 1 is a placeholder; the bill for what was made is unknown
            "cost_usd": None,
            "priced": False,
        },
    ),
    (
        "a-truncated",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-truncate-after": "2"},
        {
            "status_code": 200,
            "error_type": "upstream_stream_incomplete",
            "tokens_input": IN,
            "tokens_output": None,
            "cost_usd": None,
            "priced": False,
        },
    ),
    (
        "a-aborted",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-abort-after": "2"},
        {"status_code": 200, "error_type": "upstream_stream_aborted"},
    ),
    (
        "a-malformed-json",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-malformed": "1"},
        {"status_code": 200, "error_type": "upstream_invalid_json", "cost_usd": None},
    ),
    (
        "a-slow-bytes",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-slow-bytes-ms": "1"},
        {"error_type": None, "cost_usd": HAIKU},
    ),
    (
        "a-latency",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-latency-ms": "50"},
        {"error_type": None, "cost_usd": HAIKU},
    ),
    (
        "a-paced",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-delta-interval-ms": "5", "x-mock-delta-count": "4"},
        {"error_type": None, "tokens_output": 12, "cost_usd": by_hand("1", "5", output_tokens=12)},
    ),
    (
        "a-reported-cost",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-cost-usd": "0.125"},
        {"cost_sdk_usd": Decimal("0.125"), "cost_usd": HAIKU},
    ),
    (
        "a-gzip-json",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-content-encoding": "gzip"},
        {"error_type": None, "cost_usd": HAIKU, "tokens_input": IN},
    ),
    (
        "a-deflate-json",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-content-encoding": "deflate"},
        {"error_type": None, "cost_usd": HAIKU},
    ),
    (
        "a-br-stream",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-content-encoding": "br"},
        {"error_type": None, "cost_usd": HAIKU},
    ),
    (
        "a-zstd-stream-error",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-content-encoding": "zstd", "x-mock-stream-error-after": "1"},
        {"status_code": 200, "error_type": "overloaded_error"},
    ),
    # Three web searches at $10 per 1,000 searches: 3 x $0.01 = $0.03 on top of the tokens.
    (
        "a-web-search",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-web-searches": "3"},
        {"web_search_requests": 3, "cost_tools_usd": Decimal("0.03"), "cost_usd": by_hand("1", "5", tools="0.03")},
    ),
    # Opus 4.6 fast mode: $30 input, $150 output (platform.claude.com fast-mode page).
    (
        "a-fast-mode",
        "anthropic",
        "claude-opus-4-6",
        False,
        {"x-mock-speed": "fast"},
        {"speed": "fast", "cost_usd": by_hand("30", "150")},
    ),  # 10 x 30 + 60 x 150 per MTok = $0.0093
    ("a-standard-speed", "anthropic", "claude-opus-4-6", False, {}, {"speed": None, "cost_usd": by_hand("5", "25")}),
    # Sonnet 4 above 200K input tokens: $6 input, $22.50 output for every token (long-context pricing).
    (
        "a-long-context",
        "anthropic",
        "claude-sonnet-4-20250514",
        False,
        {"x-mock-input-tokens": "250000"},
        {"tokens_input": 250_000, "cost_usd": by_hand("6", "22.50", input_tokens=250_000)},
    ),  # $1.5 + $0.00135
    (
        "a-at-200k",
        "anthropic",
        "claude-sonnet-4-20250514",
        False,
        {"x-mock-input-tokens": "200000"},
        {"cost_usd": by_hand("3", "15", input_tokens=200_000)},
    ),  # $0.6 + $0.0009
    (
        "a-batch-tier",
        "anthropic",
        "claude-haiku-4-5",
        False,
        {"x-mock-service-tier": "batch"},
        {"service_tier": "batch", "cost_usd": by_hand("0.50", "2.50")},
    ),  # batch: half of $1 and $5
    (
        "a-first-token-pause",
        "anthropic",
        "claude-haiku-4-5",
        True,
        {"x-mock-first-token-ms": "300"},
        {"error_type": None},
    ),
    (
        "o-json",
        "openai",
        "gpt-4o-mini",
        False,
        {},
        {"error_type": None, "cost_usd": GPT_4O_MINI, "service_tier": "default"},
    ),
    (
        "o-stream-without-usage",
        "openai",
        "gpt-4o-mini",
        True,
        {},
        {"error_type": None, "tokens_input": None, "cost_usd": None, "priced": False},
    ),
    (
        "o-stream-error",
        "openai",
        "gpt-4o-mini",
        True,
        {"x-mock-stream-error-after": "2"},
        {"status_code": 200, "error_type": "server_error"},
    ),
    (
        "o-truncated",
        "openai",
        "gpt-4o-mini",
        True,
        {"x-mock-truncate-after": "3"},
        {"status_code": 200, "error_type": "upstream_stream_incomplete"},
    ),
    (
        "o-aborted",
        "openai",
        "gpt-4o-mini",
        True,
        {"x-mock-abort-after": "1"},
        {"error_type": "upstream_stream_aborted"},
    ),
    (
        "o-status-429",
        "openai",
        "gpt-4o-mini",
        False,
        {"x-mock-status": "429"},
        {"status_code": 429, "error_type": "rate_limit_exceeded"},
    ),  # error.code, not error.type "requests"
    # Its first delta's data is cut short: the openai SDK raises JSONDecodeError on it.
    (
        "o-malformed-stream",
        "openai",
        "gpt-4o-mini",
        True,
        {"x-mock-malformed": "1"},
        {"error_type": "upstream_invalid_stream"},
    ),
    # gpt-5 priority: $2.50 input, $20 output; flex: $0.625, $5 (openai.com/api/pricing).
    (
        "o-priority",
        "openai",
        "gpt-5",
        False,
        {"x-mock-service-tier": "priority"},
        {"service_tier": "priority", "cost_usd": by_hand("2.50", "20")},
    ),  # $0.000025 + $0.0012
    (
        "o-flex",
        "openai",
        "gpt-5",
        False,
        {"x-mock-service-tier": "flex"},
        {"service_tier": "flex", "cost_usd": by_hand("0.625", "5")},
    ),
    (
        "o-reasoning",
        "openai",
        "gpt-5",
        False,
        {"x-mock-reasoning-tokens": "40"},
        {"reasoning_tokens": 40, "tokens_output": OUT, "cost_usd": by_hand("1.25", "10")},
    ),  # reasoning billed as output
    (
        "o-zstd-json",
        "openai",
        "gpt-4o-mini",
        False,
        {"x-mock-content-encoding": "zstd"},
        {"error_type": None, "cost_usd": GPT_4O_MINI},
    ),
    (
        "o-gzip-stream-error",
        "openai",
        "gpt-4o-mini",
        True,
        {"x-mock-content-encoding": "gzip", "x-mock-stream-error-after": "1"},
        {"error_type": "server_error"},
    ),
]


def _send(proxy_url: str, name: str, provider: str, model: str, stream: bool, mock: dict) -> httpx.Response:
    headers = {**(ANTHROPIC if provider == "anthropic" else OPENAI), **mock, "x-request-id": name}
    body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}
    if provider == "anthropic":
        body["max_tokens"] = 100
    path = "/v1/messages" if provider == "anthropic" else "/v1/chat/completions"
    with httpx.stream("POST", proxy_url + path, json=body, headers=headers, timeout=30) as response:
        try:
            response.read()
        except httpx.HTTPError:
            pass  # an aborted stream: the client sees the cut too
    return response


def _stored_rows(path: str) -> dict[str, dict]:
    with duckdb.connect(path, read_only=True) as con:
        cursor = con.execute('SELECT * EXCLUDE ("timestamp") FROM access_logs')
        names = [column[0] for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return {row["client_request_id"]: row for row in rows}


def test_every_mock_fault_leaves_the_row_the_provider_meant(proxy_factory, tmp_path):
    proxy = proxy_factory(observability=STORAGE_ON)
    responses = {case[0]: _send(proxy.url, *case[:5]) for case in CASES}
    wait_until(lambda: httpx.get(proxy.url + "/logs/query", params={"limit": 1000}).json()["count"] == len(CASES))
    proxy.stop()
    rows = _stored_rows(str(tmp_path / "ccproxy.duckdb"))
    assert sorted(rows) == sorted(case[0] for case in CASES)
    for name, _provider, _model, stream, _mock, expected in CASES:
        row = rows[name]
        actual = {column: row[column] for column in expected}
        assert actual == expected, name
        assert row["request_id"] == responses[name].headers["x-ccproxy-request-id"], name
        assert row["streaming"] is stream
        if stream and row["error_type"] is None:
            assert row["ttft_ms"] is not None and row["ttfb_ms"] <= row["ttft_ms"], name
    pause = rows["a-first-token-pause"]
    assert pause["ttft_ms"] >= 300 > pause["ttfb_ms"]  # the first byte came before the 300 ms pause, the token after
