"""The OpenTelemetry plugin against an OTLP/HTTP receiver on loopback that decodes what it receives.

A real ccproxy (uvicorn) in front of the mock provider, driven by the real anthropic and
openai SDKs; the plugin is configured only by the standard OTEL_* variables.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import anthropic
import httpx
import openai
import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

import ccproxy_otel
from ccproxy_core.errors import StartupError
from ccproxy_core.plugin_host.plugins import enablement
from ccproxy_core.testing import make_settings
from ccproxy_otel.attributes import unix_nanos
from ccproxy_otel.header_settings import HEADER_VARIABLES, check_header_variables
from ccproxy_otel.pipeline import build_pipeline
from tests.duckdb_records import numbered_record as make_record
from tests.otlp_receiver import OTLPReceiver, attributes

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
# Recognisable keys: neither may appear anywhere in what is exported.
ANTHROPIC_KEY = "sk-ant-api03-OTELCANARY-never-exported-0123456789"
OPENAI_KEY = "sk-proj-OTELCANARY-never-exported-9876543210"
HELLO = [{"role": "user", "content": "hello there"}]
CACHED_SYSTEM = [{"type": "text", "text": "You are terse. " * 200, "cache_control": {"type": "ephemeral"}}]
OTEL_ON = {"otel_enabled": True, "otel_metrics_enabled": True}


@pytest.fixture
def receiver(monkeypatch):
    """The receiver, with the OTEL_* variables pointing at it; ask for it before the proxy, so it outlives the proxy."""
    receiver = OTLPReceiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "ccproxy-otel-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
    yield receiver
    receiver.stop()


def send_requests(proxy_url: str) -> dict[str, str]:
    """Four requests, each a different case; returns their request ids by case."""
    claude = anthropic.Anthropic(
        base_url=proxy_url,
        api_key=ANTHROPIC_KEY,
        max_retries=0,
        default_headers={"traceparent": TRACEPARENT, "tracestate": "vendor=abc"},
    )
    gpt = openai.OpenAI(base_url=proxy_url + "/v1", api_key=OPENAI_KEY, max_retries=0)
    ids = {}
    answer = claude.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=20, system=CACHED_SYSTEM, messages=HELLO
    )
    ids["traced"] = answer.headers["x-ccproxy-request-id"]
    with gpt.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=HELLO, stream=True, stream_options={"include_usage": True}
    ) as streamed:
        streamed.read()
        ids["stream"] = streamed.headers["x-ccproxy-request-id"]
    with pytest.raises(anthropic.APIStatusError) as failure:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=HELLO, extra_headers={"x-mock-status": "529"}
        )
    ids["overloaded"] = failure.value.response.headers["x-ccproxy-request-id"]
    garbage = gpt.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=HELLO, extra_headers={"traceparent": "00-not-a-trace-" + "z" * 500 + "-01"}
    )
    ids["bad_traceparent"] = garbage.headers["x-ccproxy-request-id"]
    return ids


def test_one_span_per_request_with_genai_attributes_in_the_clients_trace(receiver, proxy_factory, recorder, upstream):
    proxy = proxy_factory(plugins=[recorder], observability=OTEL_ON)
    ids = send_requests(proxy.url)
    records = {record.request_id: record for record in recorder.wait_for_ends(4)}
    received = receiver.wait_for(lambda: len(receiver.spans()) >= 4 and receiver.spans())
    assert len(received) == 4
    spans = {attributes(span.attributes)["ccproxy.request_id"]: (resource, span) for resource, span in received}
    assert set(spans) == set(ids.values())
    upstream_url = urlsplit(upstream.url)

    for request_id, (resource, span) in spans.items():
        record = records[request_id]
        assert resource["service.name"] == "ccproxy-otel-test"
        assert span.kind == Span.SPAN_KIND_CLIENT
        assert span.start_time_unix_nano == unix_nanos(record.timestamp)
        assert span.end_time_unix_nano - span.start_time_unix_nano == round(record.duration_seconds * 1e9)
        found = attributes(span.attributes)
        assert found["server.address"] == upstream_url.hostname and found["server.port"] == upstream_url.port
        assert found["gen_ai.provider.name"] == found["gen_ai.system"] == record.service_type
        assert found["gen_ai.operation.name"] == "chat"
        assert found["gen_ai.request.model"] == record.model
        assert found["http.response.status_code"] == record.upstream_status
        assert found["ccproxy.status_code"] == record.status_code

    _, traced = spans[ids["traced"]]
    record = records[ids["traced"]]
    assert traced.trace_id.hex() == TRACE_ID and traced.parent_span_id.hex() == PARENT_SPAN_ID
    assert traced.trace_state == "vendor=abc"
    assert traced.name == "chat claude-haiku-4-5"
    assert traced.status.code == Status.STATUS_CODE_UNSET
    assert record.cache_read_tokens and record.cache_write_tokens  # the mock caches part of a cache_control prompt
    assert attributes(traced.attributes) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-haiku-4-5",
        "gen_ai.response.model": record.response_model,
        "gen_ai.response.finish_reasons": ["end_turn"],
        "gen_ai.request.stream": False,
        "gen_ai.usage.input_tokens": record.tokens_input + record.cache_read_tokens + record.cache_write_tokens,
        "gen_ai.usage.output_tokens": record.tokens_output,
        "gen_ai.usage.cache_read.input_tokens": record.cache_read_tokens,
        "gen_ai.usage.cache_creation.input_tokens": record.cache_write_tokens,
        "server.address": upstream_url.hostname,
        "server.port": upstream_url.port,
        "http.response.status_code": 200,
        "ccproxy.status_code": 200,
        "ccproxy.request_id": ids["traced"],
        "ccproxy.cost_usd": float(record.cost_usd),
    }

    _, streamed = spans[ids["stream"]]
    found = attributes(streamed.attributes)
    assert streamed.parent_span_id == b"" and streamed.trace_id.hex() != TRACE_ID  # a trace of its own
    assert found["gen_ai.request.stream"] is True
    assert found["gen_ai.response.time_to_first_chunk"] == pytest.approx(records[ids["stream"]].ttft_ms / 1000)
    assert found["gen_ai.usage.output_tokens"] == records[ids["stream"]].tokens_output > 0

    _, overloaded = spans[ids["overloaded"]]
    found = attributes(overloaded.attributes)
    assert found["error.type"] == "overloaded_error" and found["http.response.status_code"] == 529
    assert overloaded.status.code == Status.STATUS_CODE_ERROR
    assert overloaded.trace_id.hex() == TRACE_ID  # the same client, the same trace

    _, garbage = spans[ids["bad_traceparent"]]
    assert garbage.parent_span_id == b"" and "error.type" not in attributes(garbage.attributes)


def test_nothing_secret_is_exported(receiver, proxy_factory):
    proxy = proxy_factory(observability=OTEL_ON)
    ids = send_requests(proxy.url)
    httpx.post(
        proxy.url + f"/v1/messages?key={ANTHROPIC_KEY}",
        json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": HELLO},
        headers={"authorization": f"Bearer {ANTHROPIC_KEY}", "cookie": f"session={OPENAI_KEY}"},
    )
    receiver.wait_for(lambda: len(receiver.spans()) >= 5)
    receiver.wait_for(lambda: "gen_ai.client.token.usage" in receiver.metrics())
    exported = b"".join(receiver.raw)
    assert ids["traced"].encode() in exported  # the search below looks where the spans are
    for secret in (ANTHROPIC_KEY, OPENAI_KEY, "OTELCANARY"):
        assert secret.encode() not in exported


def test_genai_metrics_are_exported_when_asked(receiver, proxy_factory):
    proxy = proxy_factory(observability=OTEL_ON)
    send_requests(proxy.url)

    def all_four_counted():  # exports are cumulative: wait for one made after the fourth request
        metrics = receiver.metrics()
        durations = metrics.get("gen_ai.client.operation.duration", [])
        counted = durations and sum(point.count for point in durations[-1].histogram.data_points) == 4
        return counted and "gen_ai.client.token.usage" in metrics and metrics

    metrics = receiver.wait_for(all_four_counted)
    usage = metrics["gen_ai.client.token.usage"][-1]
    assert usage.unit == "{token}"
    token_types = {attributes(point.attributes)["gen_ai.token.type"] for point in usage.histogram.data_points}
    assert token_types == {"input", "output"}
    duration = metrics["gen_ai.client.operation.duration"][-1]
    assert duration.unit == "s"
    points = {attributes(point.attributes).get("error.type"): point for point in duration.histogram.data_points}
    assert points["overloaded_error"].count == 1
    assert sum(point.count for point in duration.histogram.data_points) == 4
    assert list(duration.histogram.data_points[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]


def test_metrics_stay_off_unless_asked(receiver, proxy_factory):
    proxy = proxy_factory(observability={"otel_enabled": True})
    send_requests(proxy.url)
    receiver.wait_for(lambda: len(receiver.spans()) >= 4)
    proxy.stop()  # shutdown flushes every pipeline there is
    assert receiver.exports["/v1/metrics"] == []


def test_off_by_default_and_on_by_its_flag(upstream):
    spec = ccproxy_otel.register_plugin()
    assert enablement("otel", spec, make_settings(upstream.url)) == (False, "OBSERVABILITY__OTEL_ENABLED=false")
    assert enablement("otel", spec, make_settings(upstream.url, observability={"otel_enabled": True}))[0] is True


def test_an_unreachable_collector_changes_nothing_for_clients(proxy_factory, recorder, monkeypatch):
    closed = OTLPReceiver()  # started and stopped at once: nothing listens on its port any more
    endpoint = closed.endpoint
    closed.stop()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    proxy = proxy_factory(plugins=[recorder], observability={"otel_enabled": True})
    claude = anthropic.Anthropic(base_url=proxy.url, api_key=ANTHROPIC_KEY, max_retries=0)
    for _ in range(3):
        assert claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO).content
    assert [record.status_code for record in recorder.wait_for_ends(3)] == [200, 200, 200]
    proxy.stop()  # the last export fails and shutdown still completes


def test_an_opentelemetry_set_up_of_the_environment_gets_no_spans_of_the_web_framework(
    proxy_factory, recorder, monkeypatch
):
    # As under `opentelemetry-instrument`: a tracer provider configured for the whole process.
    # FastAPI's own spans would carry every request's URL, query string included, to it.
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    proxy = proxy_factory(plugins=[recorder])
    headers = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(proxy.url + "/v1/messages?api_key=secret", json=body, headers=headers).status_code == 200
    recorder.wait_for_ends(1)
    assert exported.get_finished_spans() == ()


@pytest.mark.parametrize("variable", HEADER_VARIABLES)
def test_a_header_list_the_sdk_cannot_read_stops_start_up_without_showing_it(monkeypatch, variable):
    monkeypatch.setenv(variable, "x-honeycomb-team otelSECRET0123")
    with pytest.raises(StartupError, match=variable) as raised:
        build_pipeline(with_metrics=True)
    assert "otelSECRET" not in str(raised.value)


def test_a_header_list_in_the_specifications_form_is_taken(monkeypatch):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=abc%20def, x-dataset = ccproxy")
    check_header_variables()


@pytest.mark.parametrize("value", ["a=b\n", "a=b\r\n", "a = b \t,\t c=d", "x-honeycomb-team=abc%20def"])
def test_header_lists_the_sdk_reads_are_taken_as_written(monkeypatch, value):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", value)
    check_header_variables()


def test_the_span_carries_the_providers_status_and_ccproxy_the_clients():
    from ccproxy_otel.attributes import span_attributes

    left = dataclasses.replace(make_record(1), status_code=499, upstream_status=200, error_type="client_disconnected")
    found = span_attributes(left, None)
    assert (found["http.response.status_code"], found["ccproxy.status_code"]) == (200, 499)
    refused = dataclasses.replace(make_record(2), status_code=413, upstream_status=None, error_type="request_too_large")
    found = span_attributes(refused, None)
    assert "http.response.status_code" not in found and found["ccproxy.status_code"] == 413


def test_a_failed_record_without_an_error_type_is_named_as_the_record_would_name_it():
    from ccproxy_otel.attributes import error_type

    # Before: "500", a series /metrics and the records never show.
    assert error_type(dataclasses.replace(make_record(1), status_code=500, error_type=None)) == "http_500"
    assert error_type(dataclasses.replace(make_record(2), status_code=200, error_type=None)) is None


def test_a_collectors_reply_is_read_a_mebibyte_at_most(proxy_factory, monkeypatch):
    hostile = OTLPReceiver(reply_bytes=64 << 20)  # 64 MiB of zeros answered to every export
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", hostile.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    try:
        proxy = proxy_factory(observability={"otel_enabled": True})
        claude = anthropic.Anthropic(base_url=proxy.url, api_key=ANTHROPIC_KEY, max_retries=0)
        for exported in (1, 2):  # the exporter goes on after such a reply
            assert claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO).content
            hostile.wait_for(lambda exported=exported: len(hostile.spans()) >= exported)
        sent = hostile.wait_for(lambda: len(hostile.replies_sent) >= 2 and hostile.replies_sent)
        # Before: each reply read whole, 64 MiB held at once (the test's receiver sent every byte).
        assert max(sent) < 16 << 20
    finally:
        hostile.stop()


def test_a_path_outside_the_provider_apis_names_no_providers_server(receiver, proxy_factory):
    proxy = proxy_factory(observability={"otel_enabled": True})
    wrong_base_url = httpx.post(
        proxy.url + "/openai/v1/chat/completions",
        json={"model": "gpt-4o", "messages": HELLO},
        headers={"authorization": f"Bearer {OPENAI_KEY}"},
    )
    assert wrong_base_url.status_code == 404
    [(_, span)] = receiver.wait_for(lambda: receiver.spans() or None)
    found = attributes(span.attributes)
    assert found["error.type"] == "not_found"
    # Before: the OpenAI upstream's host and port, as if it had been called.
    assert "server.address" not in found and "server.port" not in found
