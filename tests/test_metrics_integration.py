"""The metrics plugin in a real server in front of the mock provider, driven by the real SDKs.

After a known mix of requests (both providers, streaming and not, upstream errors, a
client that hangs up mid-stream) every family on /metrics holds exactly the expected values.
"""

from __future__ import annotations

import subprocess
import time
from collections import defaultdict

import anthropic
import httpx
import openai
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core import hookimpl
from tests.tools import tool_path

CLAUDE = "claude-haiku-4-5"
GPT = "gpt-4o-mini"
# 400 + 8 characters of prompt = 102 tokens; with cache_control the mock reads 51 and writes 25 of them.
CACHED_SYSTEM = [{"type": "text", "text": "s" * 400, "cache_control": {"type": "ephemeral"}}]
HELLO = [{"role": "user", "content": "hi there"}]
# 4400 characters = 1100 prompt tokens: over OpenAI's 1024, so the mock caches 512 of them.
LONG_PROMPT = [{"role": "user", "content": "y" * 4400}]
MIX_SIZE = 8
METRICS_ON = {"metrics_endpoint_enabled": True}


def send_known_mix(proxy_url: str) -> None:
    """Eight proxied requests; their expected outcome is in the test below."""
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="test-key", max_retries=0)
    gpt = openai.OpenAI(base_url=proxy_url + "/v1", api_key="test-key", max_retries=0)
    for _ in range(2):
        claude.messages.create(model=CLAUDE, max_tokens=100, system=CACHED_SYSTEM, messages=HELLO)
    with claude.messages.stream(
        model=CLAUDE, max_tokens=100, system=CACHED_SYSTEM, messages=HELLO, extra_headers={"x-mock-delta-count": "5"}
    ) as stream:
        stream.get_final_message()
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model=CLAUDE, max_tokens=100, messages=HELLO, extra_headers={"x-mock-status": "429"})
    gpt.chat.completions.create(model=GPT, messages=LONG_PROMPT)
    chunks = gpt.chat.completions.create(
        model=GPT,
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"x-mock-delta-count": "4"},
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    with pytest.raises(openai.InternalServerError):
        gpt.chat.completions.create(model=GPT, messages=HELLO, extra_headers={"x-mock-status": "500"})
    hang_up_mid_stream(proxy_url)


def hang_up_mid_stream(proxy_url: str) -> None:
    """Read the first bytes of a slow stream, then close the connection."""
    body = {"model": CLAUDE, "max_tokens": 100, "stream": True, "messages": HELLO}
    headers = {
        "x-api-key": "test-key",
        "anthropic-version": "2023-06-01",
        "x-mock-delta-count": "200",
        "x-mock-delta-interval-ms": "50",
    }
    with httpx.Client(base_url=proxy_url, timeout=10) as client:
        with client.stream("POST", "/v1/messages", json=body, headers=headers) as response:
            assert response.status_code == 200
            next(response.iter_raw())


def scrape(proxy_url: str, **headers: str) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label items: value}} from /metrics."""
    response = httpx.get(proxy_url + "/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**values: str) -> tuple:
    return tuple(sorted(values.items()))


def poll_metrics(proxy_url: str, ready, timeout: float = 15.0) -> dict:
    """Scrape /metrics until ``ready(samples)`` is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(proxy_url)
        if ready(samples):
            return samples
        assert time.monotonic() < deadline, f"metrics never got ready: {dict(samples)}"
        time.sleep(0.05)


def scrape_when_all_recorded(proxy_url: str, expected_requests: int) -> dict:
    """Scrape once every request (the hung-up stream lands last) is counted."""
    return poll_metrics(proxy_url, lambda samples: sum(samples["ccproxy_requests_total"].values()) >= expected_requests)


def sums_by(records, key, value) -> dict[tuple, float]:
    totals: dict[tuple, float] = defaultdict(float)
    for record in records:
        amount = value(record)
        if amount:
            totals[key(record)] += float(amount)
    return dict(totals)


@pytest.fixture
def mixed_traffic(proxy_factory, recorder):
    """A metrics-enabled proxy after the known mix, with /health and /metrics hit too; (samples, records)."""
    proxy = proxy_factory(plugins=[recorder], observability=METRICS_ON)
    httpx.get(proxy.url + "/health").raise_for_status()
    scrape(proxy.url)
    send_known_mix(proxy.url)
    samples = scrape_when_all_recorded(proxy.url, MIX_SIZE)
    records = recorder.wait_for_ends(MIX_SIZE)
    return proxy, samples, records


def test_requests_and_errors_are_counted_exactly(mixed_traffic):
    _proxy, samples, records = mixed_traffic
    claude = {"endpoint": "/v1/messages", "model": CLAUDE, "service_type": "anthropic"}
    gpt = {"endpoint": "/v1/chat/completions", "model": GPT, "service_type": "openai"}
    assert samples["ccproxy_requests_total"] == {
        labels(method="POST", status="200", **claude): 3,
        labels(method="POST", status="429", **claude): 1,
        labels(method="POST", status="499", **claude): 1,
        labels(method="POST", status="200", **gpt): 2,
        labels(method="POST", status="500", **gpt): 1,
    }
    assert samples["ccproxy_errors_total"] == {
        labels(error_type="rate_limit_error", **claude): 1,
        labels(error_type="client_disconnected", **claude): 1,
        labels(error_type="server_error", **gpt): 1,
        labels(error_type="budget_exceeded", **claude): 0,  # made with the first 429s, for the alert rules
    }
    assert samples["ccproxy_active_requests"] == {(): 0}
    assert samples["ccproxy_plugin_errors_total"] == {}
    assert len(records) == MIX_SIZE


def test_the_proxys_own_endpoints_are_not_counted(mixed_traffic):
    _proxy, samples, _records = mixed_traffic
    endpoints = {dict(key).get("endpoint") for series in samples.values() for key in series}
    assert endpoints <= {None, "/v1/messages", "/v1/chat/completions"}
    assert sum(samples["ccproxy_requests_total"].values()) == MIX_SIZE


def test_token_sums_equal_the_records_and_the_mocks_usage(mixed_traffic):
    _proxy, samples, records = mixed_traffic
    expected: dict[tuple, float] = defaultdict(float)
    for record in records:
        for kind, amount in (
            ("input", record.tokens_input),
            ("output", record.tokens_output),
            ("cache_read", record.cache_read_tokens),
            ("cache_write", record.cache_write_tokens),
        ):
            if amount:
                expected[labels(type=kind, model=record.model, service_type=record.service_type)] += amount
    assert samples["ccproxy_tokens_total"] == expected
    # The OpenAI part is known from the mock's rules alone: 1100 + 1 prompt tokens, 512 cached, 3 per delta.
    gpt = {"model": GPT, "service_type": "openai"}
    tokens = samples["ccproxy_tokens_total"]
    assert tokens[labels(type="input", **gpt)] == 1100 - 512 + 1
    assert tokens[labels(type="cache_read", **gpt)] == 512
    assert tokens[labels(type="output", **gpt)] == 3 * 20 + 3 * 4
    assert tokens[labels(type="cache_write", model=CLAUDE, service_type="anthropic")] >= 3 * 25


def test_cost_summed_over_cost_type_equals_the_records_cost(mixed_traffic):
    _proxy, samples, records = mixed_traffic
    cost = samples["ccproxy_cost_usd_total"]
    total_of_records = sum(float(record.cost_usd) for record in records if record.cost_usd is not None)
    assert total_of_records > 0
    assert sum(cost.values()) == pytest.approx(total_of_records, rel=1e-9)
    expected: dict[tuple, float] = defaultdict(float)
    for record in records:
        for kind in ("input", "output", "cache_read", "cache_write", "tools"):
            amount = getattr(record, f"cost_{kind}_usd")
            if amount:
                expected[labels(model=record.model, cost_type=kind, service_type=record.service_type)] += float(amount)
    assert cost.keys() == expected.keys()
    for key, amount in expected.items():
        assert cost[key] == pytest.approx(amount, rel=1e-9), key


def histogram(samples, name: str, part: str) -> dict[tuple, float]:
    return samples[f"{name}_{part}"]


def test_latency_histograms_hold_every_request(mixed_traffic):
    _proxy, samples, records = mixed_traffic

    def latency_key(record):
        return labels(model=record.model, endpoint=record.endpoint, service_type=record.service_type)

    name = "ccproxy_response_duration_seconds"
    assert histogram(samples, name, "count") == sums_by(records, latency_key, lambda record: 1)
    expected_sums = sums_by(records, latency_key, lambda record: record.duration_seconds)
    assert histogram(samples, name, "sum") == pytest.approx(expected_sums, rel=1e-9)
    for key, count in histogram(samples, name, "count").items():
        assert histogram(samples, name, "bucket")[tuple(sorted((*key, ("le", "+Inf"))))] == count

    name = "ccproxy_upstream_duration_seconds"
    waited = [record for record in records if record.upstream_duration_ms is not None]
    assert len(waited) >= MIX_SIZE - 1  # every request reached the provider; a hung-up stream may not report it
    assert histogram(samples, name, "count") == sums_by(waited, latency_key, lambda record: 1)
    expected_sums = sums_by(waited, latency_key, lambda record: record.upstream_duration_ms / 1000)
    assert histogram(samples, name, "sum") == pytest.approx(expected_sums, rel=1e-9)

    # Time to first token counts content tokens: the stream hung up before its first delta has none.
    streamed = {
        labels(model=CLAUDE, endpoint="/v1/messages", service_type="anthropic"): 1,
        labels(model=GPT, endpoint="/v1/chat/completions", service_type="openai"): 1,
    }
    assert histogram(samples, "ccproxy_time_to_first_token_seconds", "count") == streamed
    expected_ttft = sums_by(
        [r for r in records if r.ttft_ms is not None], latency_key, lambda record: record.ttft_ms / 1000
    )
    assert histogram(samples, "ccproxy_time_to_first_token_seconds", "sum") == pytest.approx(expected_ttft, rel=1e-9)

    overhead = sums_by(
        records,
        lambda record: labels(endpoint=record.endpoint, service_type=record.service_type),
        lambda record: record.proxy_overhead_ms is not None,
    )
    assert histogram(samples, "ccproxy_proxy_overhead_seconds", "count") == overhead


def test_rate_limit_gauges_and_byte_counters_follow_the_records(mixed_traffic):
    _proxy, samples, records = mixed_traffic
    latest: dict[str, dict[tuple, float]] = {"limit": {}, "remaining": {}}
    for record in records:  # in the order the hooks saw them, as the gauges did
        for key, amount in record.rate_limits.items():
            resource, _, kind = key.rpartition("_")
            latest[kind][labels(service_type=record.service_type, resource=resource)] = amount
    assert latest["limit"], "the mock sends rate-limit headers"
    assert samples["ccproxy_ratelimit_limit"] == latest["limit"]
    assert samples["ccproxy_ratelimit_remaining"] == latest["remaining"]
    assert latest["limit"][labels(service_type="anthropic", resource="requests")] == 4000
    assert latest["limit"][labels(service_type="openai", resource="tokens")] == 30_000_000

    def by_service(record) -> tuple:
        return labels(service_type=record.service_type)

    assert samples["ccproxy_request_bytes_total"] == sums_by(records, by_service, lambda record: record.request_bytes)
    assert samples["ccproxy_response_bytes_total"] == sums_by(records, by_service, lambda record: record.response_bytes)


@pytest.mark.needs_tool("promtool")
def test_the_exposition_passes_promtool_and_speaks_openmetrics_when_asked(mixed_traffic):
    proxy, _samples, _records = mixed_traffic
    promtool = tool_path("promtool")
    text = httpx.get(proxy.url + "/metrics")
    assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    result = subprocess.run([promtool, "check", "metrics"], input=text.content, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()

    negotiated = httpx.get(proxy.url + "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"})
    assert negotiated.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    families = {family.name: family for family in parse_openmetrics(negotiated.text)}  # the strict parser
    assert (
        sum(sample.value for sample in families["ccproxy_requests"].samples if sample.name == "ccproxy_requests_total")
        == MIX_SIZE
    )


def test_the_process_and_the_interpreter_are_described_too(mixed_traffic):
    proxy, _samples, _records = mixed_traffic
    families = {
        family.name: family for family in text_string_to_metric_families(httpx.get(proxy.url + "/metrics").text)
    }
    resident = families["process_resident_memory_bytes"].samples[0].value
    assert 20 * 2**20 < resident < 4 * 2**30  # this server's own memory: more than the interpreter alone
    assert families["python_info"].samples[0].labels["implementation"] == "CPython"
    assert "python_gc_collections" in families


def test_metrics_need_the_auth_token_when_one_is_set(proxy_factory):
    proxy = proxy_factory(observability=METRICS_ON, security={"auth_token": "metrics-token"})
    refused = httpx.get(proxy.url + "/metrics")
    assert refused.status_code == 401
    assert "ccproxy_requests_total" not in refused.text
    allowed = httpx.get(proxy.url + "/metrics", headers={"authorization": "Bearer metrics-token"})
    assert allowed.status_code == 200
    assert "# TYPE ccproxy_requests_total counter" in allowed.text


def test_without_the_endpoint_flag_metrics_are_collected_but_not_served(proxy_factory, recorder):
    # Loaded for the Pushgateway only (an address nobody listens on: pushes fail quietly, off the request path).
    proxy = proxy_factory(
        plugins=[recorder], observability={"pushgateway_url": "http://127.0.0.1:9", "pushgateway_interval_seconds": 60}
    )
    assert not [route for route in proxy.app.routes if getattr(route, "path", None) == "/metrics"]
    anthropic.Anthropic(base_url=proxy.url, api_key="test-key", max_retries=0).messages.create(
        model=CLAUDE, max_tokens=10, messages=HELLO
    )
    recorder.wait_for_ends(1)
    registry = proxy.app.state.ccproxy.metrics_registry()
    assert (
        registry.get_sample_value(
            "ccproxy_requests_total",
            {
                "method": "POST",
                "endpoint": "/v1/messages",
                "model": CLAUDE,
                "status": "200",
                "service_type": "anthropic",
            },
        )
        == 1
    )
    assert "# TYPE ccproxy_requests_total" not in httpx.get(proxy.url + "/metrics").text


def test_two_servers_in_one_process_count_only_their_own_requests(proxy_factory, recorder):
    busy = proxy_factory(plugins=[recorder], observability=METRICS_ON)
    idle = proxy_factory(observability=METRICS_ON)
    for _ in range(3):
        anthropic.Anthropic(base_url=busy.url, api_key="test-key", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=10, messages=HELLO
        )
    recorder.wait_for_ends(3)
    assert sum(scrape_when_all_recorded(busy.url, 3)["ccproxy_requests_total"].values()) == 3
    idle_samples = scrape(idle.url)
    assert idle_samples["ccproxy_requests_total"] == {}
    assert idle_samples["ccproxy_active_requests"] == {(): 0}


class BrokenPlugin:
    """A plugin whose on_request_end always raises."""

    @hookimpl
    def on_request_end(self, record) -> None:
        raise RuntimeError("broken on purpose")


def test_a_request_hook_error_elsewhere_shows_up_per_plugin_and_hook(proxy_factory):
    broken = BrokenPlugin()
    proxy = proxy_factory(plugins=[broken], observability=METRICS_ON)
    anthropic.Anthropic(base_url=proxy.url, api_key="test-key", max_retries=0).messages.create(
        model=CLAUDE, max_tokens=10, messages=HELLO
    )
    samples = poll_metrics(proxy.url, lambda samples: samples["ccproxy_plugin_errors_total"])
    name = proxy.app.state.plugin_manager.get_name(broken)
    assert samples["ccproxy_plugin_errors_total"] == {labels(plugin=name, hook="on_request_end"): 1}
    assert sum(samples["ccproxy_requests_total"].values()) == 1
    assert samples["ccproxy_active_requests"] == {(): 0}


def test_log_writer_health_comes_from_the_duckdb_store(proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder],
        observability={**METRICS_ON, "logs_collection_enabled": True, "log_flush_interval_seconds": 0.05},
    )
    for _ in range(3):
        anthropic.Anthropic(base_url=proxy.url, api_key="test-key", max_retries=0).messages.create(
            model=CLAUDE, max_tokens=10, messages=HELLO
        )
    samples = poll_metrics(proxy.url, lambda samples: samples["ccproxy_log_rows_written_total"] == {(): 3})
    assert samples["ccproxy_log_queue_depth"] == {(): 0}
    assert samples["ccproxy_log_dropped_records_total"] == {(): 0}
    assert samples["ccproxy_log_write_errors_total"] == {(): 0}
    assert samples["ccproxy_log_last_flush_timestamp_seconds"][()] > time.time() - 60


def test_with_storage_off_the_log_writer_families_have_no_samples(mixed_traffic):
    _proxy, samples, _records = mixed_traffic
    for name in ("ccproxy_log_queue_depth", "ccproxy_log_rows_written_total", "ccproxy_log_dropped_records_total"):
        assert samples[name] == {}
