"""The pushgateway plugin against a real Prometheus Pushgateway (Debian package prometheus-pushgateway).

Each test starts its own Pushgateway on a free loopback port, with persistence off,
and a real ccproxy in front of the mock provider that pushes to it every 0.2 s.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from urllib.parse import quote

import anthropic
import httpx
import openai
import pytest

from ccproxy_core import hookimpl
from tests.pushgateway_server import PASSWORD, USERNAME, Pushgateway

CLAUDE = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hi there"}]
INTERVAL = 0.2
PUSH_TIMEOUT = 1.0  # what the plugin allows one push at this interval (ccproxy_pushgateway.pusher.push_timeout)
INSTANCE = "ccproxy-test-1"


def push_settings(url: str, **more) -> dict:
    return {"pushgateway_url": url, "pushgateway_interval_seconds": INTERVAL, "pushgateway_instance": INSTANCE, **more}


def ask_claude(proxy_url: str, stream: bool = False) -> float:
    """One proxied request; returns how long it took."""
    client = anthropic.Anthropic(base_url=proxy_url, api_key="test-key", max_retries=0)
    started = time.monotonic()
    if stream:
        with client.messages.stream(model=CLAUDE, max_tokens=10, messages=HELLO) as answer:
            assert answer.get_final_message().content
    else:
        assert client.messages.create(model=CLAUDE, max_tokens=10, messages=HELLO).content
    return time.monotonic() - started


def requests_on(gateway: Pushgateway) -> float:
    return gateway.pushed("ccproxy_requests_total", job="ccproxy", instance=INSTANCE)


def test_traffic_shows_up_on_the_gateway_under_job_and_instance(start_gateway, proxy_factory, recorder):
    gateway = start_gateway()
    # The /metrics endpoint stays off: pushing does not need it.
    proxy = proxy_factory(plugins=[recorder], observability=push_settings(gateway.url))
    ask_claude(proxy.url)
    ask_claude(proxy.url, stream=True)
    openai.OpenAI(base_url=proxy.url + "/v1", api_key="test-key", max_retries=0).chat.completions.create(
        model="gpt-4o-mini", messages=HELLO
    )
    recorder.wait_for_ends(3)

    gateway.wait_for("ccproxy_requests_total", 3, job="ccproxy", instance=INSTANCE)
    gateway.wait_for("ccproxy_requests_total", 2, job="ccproxy", instance=INSTANCE, service_type="anthropic")
    assert gateway.pushed("ccproxy_active_requests", job="ccproxy", instance=INSTANCE) == 0
    assert gateway.pushed("ccproxy_tokens_total", job="ccproxy", instance=INSTANCE, type="output") > 0
    assert gateway.pushed("ccproxy_requests_total", job="ccproxy", instance="someone-else") == 0


def test_the_job_name_is_configurable(start_gateway, proxy_factory, recorder):
    gateway = start_gateway()
    proxy = proxy_factory(plugins=[recorder], observability=push_settings(gateway.url, pushgateway_job="llm-proxy"))
    ask_claude(proxy.url)
    recorder.wait_for_ends(1)
    gateway.wait_for("ccproxy_requests_total", 1, job="llm-proxy", instance=INSTANCE)


def registry_value(proxy, name: str) -> float:
    registry = proxy.app.state.ccproxy.metrics_registry()
    return registry.get_sample_value(name) or 0.0


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_stopped_gateway_fails_no_request_and_pushing_resumes_when_it_is_back(
    start_gateway, proxy_factory, recorder, caplog
):
    caplog.set_level(logging.INFO, logger="ccproxy.pushgateway")
    gateway = start_gateway()
    proxy = proxy_factory(plugins=[recorder], observability=push_settings(gateway.url))
    ask_claude(proxy.url)
    gateway.wait_for("ccproxy_requests_total", 1, job="ccproxy", instance=INSTANCE)

    gateway.stop()
    failures_before = registry_value(proxy, "ccproxy_pushgateway_push_failures_total")
    wait_until(
        lambda: registry_value(proxy, "ccproxy_pushgateway_push_failures_total") > failures_before, "a failed push"
    )
    durations = [ask_claude(proxy.url, stream=index % 2 == 1) for index in range(6)]
    assert max(durations) < PUSH_TIMEOUT / 2, durations
    wait_until(
        lambda: registry_value(proxy, "ccproxy_pushgateway_push_failures_total") >= failures_before + 8,
        "more failed pushes",
    )
    recorder.wait_for_ends(7)

    gateway.start()  # same port, empty (persistence is off)
    gateway.wait_for("ccproxy_requests_total", 7, job="ccproxy", instance=INSTANCE)
    assert gateway.pushed("ccproxy_pushgateway_push_failures_total", job="ccproxy", instance=INSTANCE) >= 3
    wait_until(lambda: any("resumed after" in record.getMessage() for record in caplog.records), "the resumed line")
    messages = [record.getMessage() for record in caplog.records if record.name == "ccproxy.pushgateway"]
    failure_lines = [message for message in messages if " failed: " in message]
    assert failure_lines[0].startswith(f"push to {gateway.url} failed: ")
    # a line at the 1st, 2nd, 4th, 8th... failure in a row, not one per interval
    failures = int(registry_value(proxy, "ccproxy_pushgateway_push_failures_total"))
    assert failures >= 8
    assert len(failure_lines) <= failures.bit_length() < failures


def test_a_gateway_that_never_answers_does_not_slow_requests(proxy_factory, recorder):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        proxy = proxy_factory(
            plugins=[recorder], observability=push_settings(f"http://127.0.0.1:{silent.getsockname()[1]}")
        )
        durations = [ask_claude(proxy.url, stream=index % 2 == 1) for index in range(8)]
        assert max(durations) < PUSH_TIMEOUT / 2, durations
        wait_until(lambda: registry_value(proxy, "ccproxy_pushgateway_push_failures_total") >= 1, "a timed-out push")
        proxy.stop()  # the final push times out too; shutdown still completes


def test_a_last_push_that_cannot_land_within_the_shutdown_is_said_to_have_failed(proxy_factory, recorder, caplog):
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        # A push may take 10 s at this interval: longer than the plugins' whole shutdown time of 2 s.
        settings = push_settings(f"http://127.0.0.1:{silent.getsockname()[1]}", pushgateway_interval_seconds=30)
        proxy = proxy_factory(plugins=[recorder], observability=settings, server={"shutdown_timeout_seconds": 2})
        ask_claude(proxy.url)
        caplog.set_level(logging.WARNING, logger="ccproxy.pushgateway")
        proxy.stop()
    # Before: the plugin was left behind at the end of its share, its last push lost without a word.
    finals = [record.getMessage() for record in caplog.records if "final push" in record.getMessage()]
    assert len(finals) == 1 and "on shutdown failed" in finals[0]


def test_a_last_push_lands_on_shutdown_and_stays_until_the_next_process_has_pushed_an_interval_later(
    start_gateway, proxy_factory, recorder
):
    gateway = start_gateway()
    # A long interval: only the final push can carry these requests.
    proxy = proxy_factory(
        plugins=[recorder], observability=push_settings(gateway.url, pushgateway_interval_seconds=300)
    )
    for _ in range(4):
        ask_claude(proxy.url)
    recorder.wait_for_ends(4)
    assert gateway.pushed("push_time_seconds", job="ccproxy", instance=INSTANCE) == 0  # not before an interval
    proxy.stop()
    assert requests_on(gateway) == 4
    # The same instance restarted: before, its start-up push replaced those 4 at once, before any scrape.
    restarted = proxy_factory(observability=push_settings(gateway.url, pushgateway_interval_seconds=2))
    time.sleep(1)
    assert requests_on(gateway) == 4
    wait_until(lambda: requests_on(gateway) == 0, "the restarted process's first push")
    restarted.stop()


def test_basic_auth_from_the_url_works_and_the_password_is_never_logged(start_gateway, proxy_factory, recorder, caplog):
    caplog.set_level(logging.DEBUG)
    gateway = start_gateway(basic_auth=True)
    assert httpx.get(gateway.url + "/metrics").status_code == 401  # the gateway really demands it
    host_and_port = gateway.url.removeprefix("http://")
    url = f"http://{USERNAME}:{quote(PASSWORD, safe='')}@{host_and_port}"
    proxy = proxy_factory(plugins=[recorder], observability=push_settings(url))
    ask_claude(proxy.url)
    recorder.wait_for_ends(1)
    gateway.wait_for("ccproxy_requests_total", 1, job="ccproxy", instance=INSTANCE)

    gateway.stop()  # make the plugin log a failure, which names the URL
    wait_until(
        lambda: any(
            "failed" in record.getMessage() for record in caplog.records if record.name == "ccproxy.pushgateway"
        ),
        "a failure line",
    )
    proxy.stop()
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records)
    assert f"http://***@{host_and_port}" in logged
    for secret in (PASSWORD, quote(PASSWORD, safe=""), "never-logged"):
        assert secret not in logged


def test_a_wrong_password_is_a_counted_failure_not_a_crash(start_gateway, proxy_factory, recorder):
    gateway = start_gateway(basic_auth=True)
    url = f"http://{USERNAME}:wrong-password@{gateway.url.removeprefix('http://')}"
    proxy = proxy_factory(plugins=[recorder], observability=push_settings(url))
    ask_claude(proxy.url)
    wait_until(lambda: registry_value(proxy, "ccproxy_pushgateway_push_failures_total") >= 2, "refused pushes")
    assert registry_value(proxy, "ccproxy_pushgateway_pushes_total") == 0
    assert gateway.pushed("ccproxy_requests_total") == 0


def test_the_last_push_carries_the_budgets_too(start_gateway, proxy_factory, recorder):
    # The budgets stop after the pusher (it starts after them), so its last push still holds their figures.
    gateway = start_gateway()
    budgets = [{"name": "daily", "scope": "all", "limit_usd": 5.0, "action": "warn"}]
    settings = push_settings(gateway.url, pushgateway_interval_seconds=300, budgets_enabled=True)
    proxy = proxy_factory(plugins=[recorder], observability=settings, budgets=budgets)
    ask_claude(proxy.url)
    recorder.wait_for_ends(1)
    proxy.stop()
    assert requests_on(gateway) == 1
    assert gateway.pushed("ccproxy_budget_limit_usd", job="ccproxy", instance=INSTANCE, budget="daily") == 5.0


class FailsToStart:
    """A plugin whose start-up fails, after the pushgateway plugin has started (it starts early)."""

    @hookimpl
    def on_startup(self):
        raise RuntimeError("its file is locked")


def test_a_ccproxy_that_never_served_leaves_no_group_on_the_gateway(start_gateway, proxy_factory):
    # Before, it pushed at once, and again as it stopped: a group of an instance that never ran stayed there.
    gateway = start_gateway()
    with pytest.raises(RuntimeError, match="failed to start"):
        proxy_factory(plugins=[FailsToStart()], observability=push_settings(gateway.url))
    time.sleep(5 * INTERVAL)
    assert gateway.pushed("push_time_seconds", job="ccproxy", instance=INSTANCE) == 0
    assert gateway.pushed("ccproxy_active_requests", job="ccproxy", instance=INSTANCE) == 0
    proxy_factory(observability=push_settings(gateway.url))  # the same settings, serving: it pushes an interval later
    wait_until(lambda: gateway.pushed("push_time_seconds", job="ccproxy", instance=INSTANCE) > 0, "a first push")


def test_the_last_push_carries_the_log_store_s_figures_though_nothing_was_pushed_or_scraped_before(
    start_gateway, proxy_factory, recorder
):
    # Before, the store's figures were read from the store remembered at an earlier push or scrape: a process
    # stopped within its first push interval pushed none, and what the store dropped while stopping was lost.
    gateway = start_gateway()
    settings = push_settings(gateway.url, pushgateway_interval_seconds=300, logs_collection_enabled=True)
    proxy = proxy_factory(plugins=[recorder], observability=settings)
    ask_claude(proxy.url)
    recorder.wait_for_ends(1)
    proxy.stop()
    assert gateway.pushed("ccproxy_log_rows_written_total", job="ccproxy", instance=INSTANCE) == 1
