"""Unit tests of the metrics plugin: families, observer, collectors and exposition, fed records built here."""

from __future__ import annotations

import itertools
import subprocess
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ccproxy_core.testing import make_record
from ccproxy_metrics.families import DURATION_BUCKETS, TTFT_BUCKETS, create_families
from ccproxy_metrics.observer import MetricsObserver
from ccproxy_metrics.routes import render_exposition
from tests.metrics_records import make_context, serve_one
from tests.tools import tool_path

DOCUMENTED_FAMILIES = {
    "ccproxy_requests": ("counter", {"method", "endpoint", "model", "status", "service_type"}),
    "ccproxy_response_duration_seconds": ("histogram", {"model", "endpoint", "service_type"}),
    "ccproxy_tokens": ("counter", {"type", "model", "service_type"}),
    "ccproxy_cost_usd": ("counter", {"model", "cost_type", "service_type"}),
    "ccproxy_unpriced_requests": ("counter", {"model", "service_type"}),
    "ccproxy_errors": ("counter", {"error_type", "endpoint", "model", "service_type"}),
    "ccproxy_active_requests": ("gauge", set()),
}


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_a_streamed_success_is_counted_in_every_family(registry, observer):
    serve_one(observer, make_record())

    model = {"model": "claude-sonnet-4-5", "service_type": "anthropic"}
    latency = {**model, "endpoint": "/v1/messages"}
    assert value(registry, "ccproxy_requests_total", method="POST", status="200", **latency) == 1
    assert value(registry, "ccproxy_response_duration_seconds_count", **latency) == 1
    assert value(registry, "ccproxy_response_duration_seconds_sum", **latency) == 1.5
    assert value(registry, "ccproxy_response_duration_seconds_bucket", le="1.0", **latency) == 0
    assert value(registry, "ccproxy_response_duration_seconds_bucket", le="2.0", **latency) == 1
    assert value(registry, "ccproxy_upstream_duration_seconds_sum", **latency) == pytest.approx(1.4)
    assert value(registry, "ccproxy_time_to_first_token_seconds_sum", **latency) == 0.25
    assert value(registry, "ccproxy_time_to_first_token_seconds_count", **latency) == 1
    assert (
        value(registry, "ccproxy_proxy_overhead_seconds_sum", endpoint="/v1/messages", service_type="anthropic")
        == 0.002
    )
    tokens = {
        kind: value(registry, "ccproxy_tokens_total", type=kind, **model)
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    assert tokens == {"input": 100, "output": 40, "cache_read": 30, "cache_write": 20}
    costs = {
        kind: value(registry, "ccproxy_cost_usd_total", cost_type=kind, **model)
        for kind in ("input", "output", "cache_read", "cache_write")
    }
    assert costs == {"input": 0.0003, "output": 0.0006, "cache_read": 0.000009, "cache_write": 0.00045}
    assert value(registry, "ccproxy_request_bytes_total", service_type="anthropic") == 512
    assert value(registry, "ccproxy_response_bytes_total", service_type="anthropic") == 4096
    assert value(registry, "ccproxy_ratelimit_limit", service_type="anthropic", resource="requests") == 50
    assert value(registry, "ccproxy_ratelimit_remaining", service_type="anthropic", resource="requests") == 49
    assert value(registry, "ccproxy_ratelimit_remaining", service_type="anthropic", resource="input_tokens") == 39000
    assert value(registry, "ccproxy_active_requests") == 0
    assert "ccproxy_errors_total{" not in generate_latest(registry).decode()


def test_a_series_is_made_when_a_record_first_counts_into_it(registry, observer):
    """Records of one label combination share their handles; one that counts no cache tokens makes no such series."""
    plain = make_record(cache_read_tokens=0, cost_cache_read_usd=None, ttft_ms=None, streaming=False)
    serve_one(observer, plain)
    model = {"model": "claude-sonnet-4-5", "service_type": "anthropic"}
    assert value(registry, "ccproxy_tokens_total", type="cache_read", **model) is None
    assert value(registry, "ccproxy_cost_usd_total", cost_type="cache_read", **model) is None
    serve_one(observer, make_record())
    assert value(registry, "ccproxy_tokens_total", type="cache_read", **model) == 30
    assert value(registry, "ccproxy_tokens_total", type="input", **model) == 200
    labels = {"method": "POST", "status": "200", "endpoint": "/v1/messages", **model}
    assert value(registry, "ccproxy_requests_total", **labels) == 2


def test_an_upstream_error_counts_as_an_error_and_adds_no_usage(registry, observer):
    serve_one(
        observer,
        make_record(
            streaming=False,
            status_code=429,
            upstream_status=429,
            error_type="rate_limit_error",
            ttft_ms=None,
            tokens_input=None,
            tokens_output=None,
            cache_read_tokens=None,
            cache_write_tokens=None,
            cost_usd=None,
            cost_input_usd=None,
            cost_output_usd=None,
            cost_cache_read_usd=None,
            cost_cache_write_usd=None,
            priced=False,
            rate_limits={"requests_remaining": 0.0},
        ),
    )

    labels = {"endpoint": "/v1/messages", "model": "claude-sonnet-4-5", "service_type": "anthropic"}
    assert value(registry, "ccproxy_requests_total", method="POST", status="429", **labels) == 1
    assert value(registry, "ccproxy_errors_total", error_type="rate_limit_error", **labels) == 1
    assert value(registry, "ccproxy_time_to_first_token_seconds_count", **labels) is None
    assert value(registry, "ccproxy_ratelimit_remaining", service_type="anthropic", resource="requests") == 0
    exposition = generate_latest(registry).decode()
    assert "ccproxy_tokens_total{" not in exposition
    assert "ccproxy_cost_usd_total{" not in exposition
    # ... and says that the cost total leaves a request out.
    unpriced = {"model": "claude-sonnet-4-5", "service_type": "anthropic"}
    assert value(registry, "ccproxy_unpriced_requests_total", **unpriced) == 1
    # A budget's refusals of these labels are counted from 0, in a series rate() already knows: the
    # alert rules take them out of the 429s, and a first scrape that showed them would not.
    assert value(registry, "ccproxy_errors_total", error_type="budget_exceeded", **labels) == 0


def test_only_requests_without_a_known_cost_are_counted_as_unpriced(registry, observer):
    serve_one(observer, make_record())
    serve_one(observer, make_record(cost_usd=0, cost_input_usd=0, cost_output_usd=0, tokens_input=0, priced=True))
    labels = {"model": "claude-sonnet-4-5", "service_type": "anthropic"}
    assert value(registry, "ccproxy_unpriced_requests_total", **labels) is None
    serve_one(observer, make_record(model="gpt-4o-mini", service_type="openai", cost_usd=None, priced=False))
    unpriced = value(registry, "ccproxy_unpriced_requests_total", model="gpt-4o-mini", service_type="openai")
    assert unpriced == 1


def test_an_unreachable_upstream_has_no_upstream_duration(registry, observer):
    serve_one(
        observer,
        make_record(
            status_code=502,
            upstream_status=None,
            upstream_duration_ms=None,
            ttft_ms=None,
            error_type="upstream_unreachable",
            endpoint="/v1/chat/completions",
            service_type="openai",
            model="gpt-4o",
        ),
    )
    labels = {"endpoint": "/v1/chat/completions", "model": "gpt-4o", "service_type": "openai"}
    assert value(registry, "ccproxy_errors_total", error_type="upstream_unreachable", **labels) == 1
    assert value(registry, "ccproxy_response_duration_seconds_count", **labels) == 1
    assert value(registry, "ccproxy_upstream_duration_seconds_count", **labels) is None


def test_cost_summed_over_cost_type_equals_the_records_cost(registry, observer):
    records = [
        make_record(request_id="a"),
        make_record(
            request_id="b",
            cost_usd=Decimal("0.0105"),
            cost_input_usd=Decimal("0.0045"),
            cost_output_usd=Decimal("0.006"),
            cost_cache_read_usd=None,
            cost_cache_write_usd=Decimal("0"),
        ),
        make_record(
            request_id="c",
            model="gpt-4o",
            service_type="openai",
            cost_usd=Decimal("0.00125"),
            cost_input_usd=Decimal("0.00025"),
            cost_output_usd=Decimal("0.001"),
            cost_cache_read_usd=None,
            cost_cache_write_usd=None,
        ),
        make_record(
            request_id="web",
            cost_usd=Decimal("0.0335"),
            cost_input_usd=Decimal("0.002"),
            cost_output_usd=Decimal("0.0015"),
            cost_cache_read_usd=None,
            cost_cache_write_usd=None,
            web_search_requests=3,
            cost_tools_usd=Decimal("0.03"),
        ),
        make_record(
            request_id="d",
            model="mystery",
            cost_usd=None,
            cost_input_usd=None,
            cost_output_usd=None,
            cost_cache_read_usd=None,
            cost_cache_write_usd=None,
            priced=False,
        ),
    ]
    for record in records:
        serve_one(observer, record)

    exposed = sum(
        sample.value
        for family in registry.collect()
        if family.name == "ccproxy_cost_usd"
        for sample in family.samples
        if sample.name == "ccproxy_cost_usd_total"
    )
    expected = sum(record.cost_usd for record in records if record.cost_usd is not None)
    assert exposed == pytest.approx(float(expected), rel=1e-12)
    web_search = value(
        registry, "ccproxy_cost_usd_total", cost_type="tools", model=records[3].model, service_type="anthropic"
    )
    assert web_search == pytest.approx(0.03)


def test_model_labels_are_capped_and_a_missing_model_is_unknown(registry):
    observer = MetricsObserver.in_registry(registry, model_label_cap=2)
    for model in ("model-a", "model-b", "model-c", "model-d", "model-a", None):
        serve_one(observer, make_record(model=model))

    def requests(model: str) -> float | None:
        return value(
            registry,
            "ccproxy_requests_total",
            method="POST",
            endpoint="/v1/messages",
            model=model,
            status="200",
            service_type="anthropic",
        )

    assert {model: requests(model) for model in ("model-a", "model-b", "other", "unknown")} == {
        "model-a": 2,
        "model-b": 1,
        "other": 2,
        "unknown": 1,
    }
    assert requests("model-c") is None
    assert value(registry, "ccproxy_tokens_total", type="input", model="other", service_type="anthropic") == 200


def test_odd_methods_are_folded_into_other(registry, observer):
    serve_one(observer, make_record(method="BREW", endpoint="unmatched", status_code=404, error_type="not_found"))
    assert (
        value(
            registry,
            "ccproxy_requests_total",
            method="other",
            endpoint="unmatched",
            model="claude-sonnet-4-5",
            status="404",
            service_type="anthropic",
        )
        == 1
    )


def test_active_requests_rise_while_in_flight_and_never_go_negative(registry, observer):
    record = make_record()
    first, second = make_context(record), make_context(record)
    observer.on_request_start(context=first)
    observer.on_request_start(context=second)
    assert value(registry, "ccproxy_active_requests") == 2
    observer.on_request_end(context=first, record=record)
    assert value(registry, "ccproxy_active_requests") == 1
    observer.on_request_end(context=second, record=record)
    # an end whose start this observer never saw (registered mid-request) leaves the gauge alone
    observer.on_request_end(context=make_context(record), record=record)
    assert value(registry, "ccproxy_active_requests") == 0
    assert (
        value(
            registry,
            "ccproxy_requests_total",
            method="POST",
            endpoint="/v1/messages",
            model="claude-sonnet-4-5",
            status="200",
            service_type="anthropic",
        )
        == 3
    )


def test_every_documented_family_is_exposed_before_its_first_sample(registry):
    create_families(registry)
    families = {family.name: family for family in registry.collect()}
    for name, (kind, _labels) in DOCUMENTED_FAMILIES.items():
        assert families[name].type == kind
        assert families[name].samples == [] or name == "ccproxy_active_requests"
    exposition = generate_latest(registry).decode()
    for name in (
        "ccproxy_requests_total",
        "ccproxy_response_duration_seconds",
        "ccproxy_tokens_total",
        "ccproxy_cost_usd_total",
        "ccproxy_errors_total",
        "ccproxy_active_requests",
        "ccproxy_time_to_first_token_seconds",
        "ccproxy_upstream_duration_seconds",
        "ccproxy_ratelimit_remaining",
        "ccproxy_ratelimit_limit",
    ):
        assert f"# HELP {name} " in exposition
        assert f"# TYPE {name} " in exposition


def test_documented_families_have_exactly_the_documented_labels(registry, observer):
    serve_one(observer, make_record(error_type="overloaded_error", status_code=529))
    for family in registry.collect():
        if family.name not in DOCUMENTED_FAMILIES:
            continue
        _kind, label_names = DOCUMENTED_FAMILIES[family.name]
        for sample in family.samples:
            assert set(sample.labels) - {"le"} == label_names, (family.name, sample)


def test_duration_buckets_run_from_50ms_to_at_least_10_minutes():
    assert DURATION_BUCKETS[0] == 0.05 and DURATION_BUCKETS[-1] >= 600
    assert TTFT_BUCKETS[0] == 0.05 and TTFT_BUCKETS[-1] >= 600
    assert list(DURATION_BUCKETS) == sorted(DURATION_BUCKETS)


@pytest.mark.parametrize("buckets", [DURATION_BUCKETS, TTFT_BUCKETS])
def test_where_most_answers_end_no_bucket_is_wider_than_half_its_lower_edge(buckets):
    # histogram_quantile places a percentile inside its bucket; with 2-5-10-20 s a p95 of 3.1 s read 4.7 s.
    edges = [edge for edge in buckets if 0.5 <= edge <= 20]
    assert edges[0] == 0.5 and edges[-1] == 20
    assert max(upper / lower for lower, upper in itertools.pairwise(edges)) <= 1.5


def test_exposition_is_prometheus_text_unless_openmetrics_is_asked_for(registry, observer):
    serve_one(observer, make_record())
    plain = render_exposition(registry, "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
    assert plain.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert b"ccproxy_requests_total{" in plain.body
    assert render_exposition(registry, None).headers["content-type"].startswith("text/plain")

    openmetrics = render_exposition(registry, "application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.body.endswith(b"# EOF\n")
    assert b"ccproxy_requests_total{" in openmetrics.body


@pytest.mark.needs_tool("promtool")
def test_exposition_passes_promtool_check_metrics(registry, observer):
    serve_one(observer, make_record())
    serve_one(observer, make_record(status_code=529, error_type="overloaded_error", model=None))
    result = subprocess.run(
        [tool_path("promtool"), "check", "metrics"], input=generate_latest(registry), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_errors_after_a_200_are_counted_apart_from_error_answers(registry, observer):
    serve_one(observer, make_record(error_type="overloaded_error", status_code=529))  # an error answer
    serve_one(observer, make_record(error_type="overloaded_error", status_code=200, streaming=True))  # in the stream
    serve_one(observer, make_record(error_type="upstream_stream_aborted", status_code=200, streaming=True))
    after_200 = "ccproxy_errors_after_200_total"
    assert registry.get_sample_value(after_200, {"error_type": "overloaded_error", "service_type": "anthropic"}) == 1
    assert (
        registry.get_sample_value(after_200, {"error_type": "upstream_stream_aborted", "service_type": "anthropic"})
        == 1
    )
    overloaded = {"error_type": "overloaded_error", "endpoint": "/v1/messages", "model": "claude-sonnet-4-5"}
    assert registry.get_sample_value("ccproxy_errors_total", {**overloaded, "service_type": "anthropic"}) == 2


def test_budget_refusals_keep_their_label_once_the_error_types_are_capped(registry, observer):
    errors = {"endpoint": "/v1/messages", "model": "claude-sonnet-4-5", "service_type": "anthropic"}
    for number in range(60):  # a provider naming a new error type each time fills the cap
        serve_one(observer, make_record(status_code=500, error_type=f"odd_error_{number}", streaming=False))
    serve_one(observer, make_record(status_code=429, error_type="budget_exceeded", streaming=False))
    assert value(registry, "ccproxy_errors_total", error_type="budget_exceeded", **errors) == 1
    assert value(registry, "ccproxy_errors_total", error_type="other", **errors) == 10
