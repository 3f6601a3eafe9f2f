"""Finished requests are put aside on the request path and counted together: no reader ever misses one."""

from __future__ import annotations

import sys
import threading

from prometheus_client import CollectorRegistry, generate_latest

from ccproxy_core.testing import make_record
from ccproxy_metrics.observer import CATCH_UP_EVERY
from tests.metrics_records import make_context, serve_one

REQUEST = {
    "method": "POST",
    "endpoint": "/v1/messages",
    "model": "claude-sonnet-4-5",
    "status": "200",
    "service_type": "anthropic",
}


def requests_total(registry: CollectorRegistry) -> float | None:
    return registry.get_sample_value("ccproxy_requests_total", REQUEST)


def test_a_scrape_counts_every_request_put_aside(registry, observer):
    for _ in range(3):
        serve_one(observer, make_record())
    assert observer.waiting == 3

    exposition = generate_latest(registry).decode()

    assert 'ccproxy_requests_total{endpoint="/v1/messages",method="POST",model="claude-sonnet-4-5"' in exposition
    assert observer.waiting == 0
    assert requests_total(registry) == 3
    assert registry.get_sample_value("ccproxy_tokens_total", {"type": "input", **_model()}) == 300


def test_the_request_path_counts_once_enough_records_wait(observer):
    for _ in range(CATCH_UP_EVERY - 1):
        serve_one(observer, make_record())
    assert observer.waiting == CATCH_UP_EVERY - 1

    serve_one(observer, make_record())

    assert observer.waiting == 0


def test_the_in_flight_gauge_is_not_put_aside(registry, observer):
    record = make_record()
    context = make_context(record)
    observer.on_request_start(context=context)
    observer.on_request_end(context=context, record=record)

    assert observer.waiting == 1
    assert observer.in_flight == 0


def test_a_record_the_metrics_cannot_take_is_skipped_alone(registry, observer):
    serve_one(observer, make_record())
    serve_one(observer, make_record(tokens_output=-1))  # a counter refuses to go down
    serve_one(observer, make_record())

    assert registry.get_sample_value("ccproxy_metrics_skipped_records_total") == 1
    assert observer.skipped_records == 1
    assert registry.get_sample_value("ccproxy_tokens_total", {"type": "output", **_model()}) == 80


def test_rate_limit_gauges_counted_together_end_at_each_headers_latest_value(registry, observer):
    serve_one(observer, make_record(rate_limits={"requests_remaining": 10.0, "tokens_remaining": 500.0}))
    serve_one(observer, make_record(rate_limits={"requests_remaining": 9.0}))
    serve_one(observer, make_record(service_type="openai", rate_limits={"requests_remaining": 70.0}))
    serve_one(observer, make_record(rate_limits={"requests_remaining": 8.0}))

    def remaining(service: str, resource: str) -> float | None:
        labels = {"service_type": service, "resource": resource}
        return registry.get_sample_value("ccproxy_ratelimit_remaining", labels)

    assert remaining("anthropic", "requests") == 8
    assert remaining("anthropic", "tokens") == 500  # no later record said otherwise
    assert remaining("openai", "requests") == 70

    serve_one(observer, make_record(rate_limits={"tokens_remaining": 400.0}))

    assert remaining("anthropic", "tokens") == 400
    assert remaining("anthropic", "requests") == 8


def test_a_rate_limit_that_is_not_a_number_is_skipped_alone(registry, observer):
    hostile = {"requests_remaining": "many", "tokens_remaining": 10**400, "requests_limit": None}
    serve_one(observer, make_record(rate_limits={**hostile, "tokens_limit": 900.0}))

    exposition = generate_latest(registry).decode()  # the scrape does not fail

    assert 'ccproxy_ratelimit_limit{resource="tokens",service_type="anthropic"} 900.0' in exposition
    assert registry.get_sample_value("ccproxy_requests_total", REQUEST) == 1
    serve_one(observer, make_record(rate_limits={"requests_remaining": 7.0}))
    assert (
        registry.get_sample_value("ccproxy_ratelimit_remaining", {"service_type": "anthropic", "resource": "requests"})
        == 7
    )


def test_scrapes_from_another_thread_lose_and_double_count_nothing(registry, observer):
    requests = 60 * CATCH_UP_EVERY + 7
    served = threading.Event()
    scrapes = 0

    def scrape_until_served() -> None:
        nonlocal scrapes
        while not served.is_set():
            generate_latest(registry)
            scrapes += 1

    scraper = threading.Thread(target=scrape_until_served)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # hand the GIL over often, so scrapes land inside the request path's counts
    scraper.start()
    try:
        for _ in range(requests):
            serve_one(observer, make_record())
    finally:
        served.set()
        scraper.join()
        sys.setswitchinterval(interval)

    assert scrapes > 0
    assert requests_total(registry) == requests
    assert registry.get_sample_value("ccproxy_active_requests") == 0


def _model() -> dict[str, str]:
    return {"model": "claude-sonnet-4-5", "service_type": "anthropic"}


def test_the_in_flight_gauge_comes_back_to_zero_though_a_plugin_cleared_the_context_s_state(registry, observer):
    # Before, the gauge kept its mark in context.state: a plugin tidying that dict left it up for good.
    record = make_record()
    context = make_context(record)
    observer.on_request_start(context=context)
    assert observer.in_flight == 1
    context.state.clear()
    observer.on_request_end(context=context, record=record)
    observer.on_request_end(context=context, record=record)  # an end without its start changes nothing
    assert observer.in_flight == 0
