"""The shipped alert rules, end to end: a real Prometheus scrapes a running ccproxy, the provoked
conditions fire, and a real Alertmanager delivers them to a webhook inside the test.

Prometheus loads a copy of deploy/prometheus/alerts.yml that differs only in its ``for:``
durations (1 s instead of minutes), so the test need not wait minutes; the expressions,
thresholds, labels and annotations are the shipped ones (and ``promtool test rules`` checks
the shipped durations). Prometheus scrapes and evaluates every second.

The same run has a blocking Opus budget and OpenTelemetry export on: the budget stops the
client at its limit with Anthropic's error shape, its alert arrives at the webhook, and the
Opus requests, the refused one too, arrive as spans at an OTLP receiver.
"""

from __future__ import annotations

import threading
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import yaml

from ccproxy_core.plugin_host.host import host_of
from ccproxy_core.testing import free_port, wait_until
from tests.alerting_servers import WebhookReceiver, start_alertmanager, start_prometheus
from tests.otlp_receiver import OTLPReceiver, attributes
from tests.test_duckdb_write_errors import fill_the_disk

RULES = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"
HELLO = [{"role": "user", "content": "hello"}]
# 7.3 million characters are 1.825 million input tokens to the mock: the input-token limit of its
# rate-limit headers (2 million) is then 91% used, and at Opus 4.1 prices the request costs 27 USD.
HUGE_PROMPT = [{"role": "user", "content": "x" * 7_300_000}]
EXPECTED = {
    "CcproxyBudgetSpent",
    "CcproxyHighErrorRate",
    "CcproxyInStreamErrors",
    "CcproxyRateLimitStorm",
    "CcproxyRateLimitHeadroomLow",
    "CcproxyCostBurnRateHigh",
    "CcproxyLogRecordsDropped",
    "CcproxyLogWriteErrors",
    "CcproxyPushgatewayPushFailing",
}
EXPECTED_LABELS = [{"alertname": name} for name in sorted(EXPECTED)] + [
    {"alertname": "CcproxyInStreamErrors", "service_type": "openai", "error_type": error_type}
    for error_type in ("upstream_stream_aborted", "server_error")
]

pytestmark = [
    pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux) to fill the log disk"),
    pytest.mark.needs_tool("prometheus", "alertmanager"),
]


def rules_with_short_for(workdir: Path) -> Path:
    groups = yaml.safe_load(RULES.read_text())
    for group in groups["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = "1s"
    copy = workdir / "alerts.yml"
    copy.write_text(yaml.safe_dump(groups))
    return copy


class OpenAITraffic:
    """OpenAI requests in a loop until stopped: successes, 429s, streams the provider cuts off, and
    streams that end in the provider's error event (server_error) after their 200. No HTTP 500s, so
    a server_error can only come from inside a stream."""

    def __init__(self, proxy_url: str) -> None:
        self.client = openai.OpenAI(base_url=proxy_url + "/v1", api_key="sk-alert-test", max_retries=0)
        self.stopped = threading.Event()
        self.sent = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            self._ask({})
            self._ask({"x-mock-status": "429", "x-mock-retry-after": "1"})
            self._ask({"x-mock-abort-after": "2"}, stream=True)
            self._ask({"x-mock-stream-error-after": "2"}, stream=True)  # an error event after the 200
            self.stopped.wait(0.2)

    def _ask(self, headers: dict[str, str], stream: bool = False) -> None:
        try:
            answer = self.client.chat.completions.create(
                model="gpt-4o-mini", messages=HELLO, stream=stream, extra_headers=headers
            )
            if stream:
                list(answer)
        except (openai.APIError, httpx.HTTPError):
            pass  # the errors are the point; ccproxy records them
        self.sent += 1

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)


def spend_on_opus(proxy_url: str, prometheus_url: str) -> list[str]:
    """A small request, two huge ones, each sent once Prometheus has scraped the spend so far, then
    one the blocking Opus budget (40 USD a day) refuses. Returns the four request ids.

    A counter's growth is seen only between two scraped samples, and a scrape can miss while
    ccproxy reads a 7 MB body on a busy machine, so the test waits for each step to be scraped.
    """
    claude = anthropic.Anthropic(base_url=proxy_url, api_key="sk-ant-alert-test", max_retries=0, timeout=120)
    first = claude.messages.with_raw_response.create(model="claude-opus-4-1", max_tokens=10, messages=HELLO)
    ids = [first.headers["x-ccproxy-request-id"]]
    for spent_so_far in (0, 27):

        def past(spent: float = spent_so_far) -> bool:
            return scraped_opus_spend(prometheus_url) > spent

        wait_until(past, timeout=60, interval=0.2)
        answer = claude.messages.with_raw_response.create(model="claude-opus-4-1", max_tokens=10, messages=HUGE_PROMPT)
        assert int(answer.headers["anthropic-ratelimit-input-tokens-remaining"]) < 200_000
        ids.append(answer.headers["x-ccproxy-request-id"])
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-opus-4-1", max_tokens=10, messages=HELLO)
    assert refused.value.response.json()["error"]["type"] == "rate_limit_error"
    ids.append(refused.value.response.headers["x-ccproxy-request-id"])
    return ids


def scraped_opus_spend(prometheus_url: str) -> float:
    query = 'sum(ccproxy_cost_usd_total{model="claude-opus-4-1"})'
    result = httpx.get(prometheus_url + "/api/v1/query", params={"query": query}, timeout=10).json()["data"]["result"]
    return float(result[0]["value"][1]) if result else -1.0


def log_status(proxy_url: str) -> dict:
    return httpx.get(proxy_url + "/logs/status", timeout=10).json()


def log_settled(proxy_url: str) -> bool:
    """Nothing queued and no new row for a moment (a stream's record lands just after its last byte)."""
    before = log_status(proxy_url)
    threading.Event().wait(0.3)
    after = log_status(proxy_url)
    return after["queue_depth"] == 0 and after["row_count"] == before["row_count"]


def prometheus_view(url: str) -> str:
    """What Prometheus itself holds: its alerts, and the values behind the cost and headroom rules."""
    alerts = httpx.get(url + "/api/v1/alerts", timeout=10).json()["data"]["alerts"]
    queries = [
        "ccproxy_cost_usd_total",
        "sum without (model, cost_type, service_type) (rate(ccproxy_cost_usd_total[1h])) * 3600",
    ]
    values = {
        query: httpx.get(url + "/api/v1/query", params={"query": query}, timeout=10).json()["data"]["result"]
        for query in queries
    }
    return f"alerts={[(a['labels']['alertname'], a['state']) for a in alerts]} values={values}"


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def otlp(monkeypatch):
    receiver = OTLPReceiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    yield receiver
    receiver.stop()


def test_provoked_conditions_reach_the_webhook_through_prometheus_and_alertmanager(
    otlp, webhook, proxy_factory, tmp_path
):
    proxy = proxy_factory(
        observability={
            "metrics_endpoint_enabled": True,
            "logs_collection_enabled": True,
            "logs_endpoints_enabled": True,
            "log_queue_size": 2,
            "log_flush_interval_seconds": 0.05,
            "budgets_enabled": True,
            "otel_enabled": True,
            # Nothing listens there: every push fails.
            "pushgateway_url": f"http://127.0.0.1:{free_port()}",
            "pushgateway_interval_seconds": 0.5,
        },
        budgets=[{"name": "opus-daily", "scope": "model:claude-opus-4-1", "limit_usd": 40.0, "action": "block"}],
    )
    alertmanager = start_alertmanager(tmp_path, webhook.url)
    prometheus = start_prometheus(
        tmp_path, rules_with_short_for(tmp_path), proxy.url.removeprefix("http://"), alertmanager.url
    )
    store = host_of(proxy.app).log_store()
    wal = Path(f"{store.database.path}.wal")
    traffic = OpenAITraffic(proxy.url)
    try:
        wait_until(lambda: log_status(proxy.url).get("row_count", 0) >= 4, timeout=30)
        opus_requests = spend_on_opus(proxy.url, prometheus.url)
        # Quiet for a moment so the log file can be checkpointed; from then on every write fails,
        # the queue of 2 fills, and records are dropped.
        traffic.stop()
        wait_until(lambda: log_settled(proxy.url), timeout=30)
        fill_the_disk(store, wal)
        traffic = OpenAITraffic(proxy.url)
        try:
            alerts = webhook.wait_for(EXPECTED_LABELS, timeout=180)
        except AssertionError as missing:
            raise AssertionError(f"{missing}\nPrometheus says: {prometheus_view(prometheus.url)}") from None
    finally:
        traffic.stop()
        if wal.is_symlink():
            wal.unlink()
    assert traffic.sent > 0
    by_name = {}
    for alert in alerts:
        assert alert["status"] == "firing"
        assert alert["labels"]["job"] == "ccproxy" and alert["labels"]["instance"] == proxy.url.removeprefix("http://")
        by_name.setdefault(alert["labels"]["alertname"], []).append(alert)
    assert {a["labels"]["service_type"] for a in by_name["CcproxyHighErrorRate"]} == {"openai"}
    assert {a["labels"]["service_type"] for a in by_name["CcproxyRateLimitStorm"]} == {"openai"}
    assert {(a["labels"]["service_type"], a["labels"]["error_type"]) for a in by_name["CcproxyInStreamErrors"]} >= {
        ("openai", "upstream_stream_aborted"),
        ("openai", "server_error"),
    }
    assert {(a["labels"]["service_type"], a["labels"]["resource"]) for a in by_name["CcproxyRateLimitHeadroomLow"]} == {
        ("anthropic", "input_tokens")
    }
    [burn] = by_name["CcproxyCostBurnRateHigh"]
    assert "USD per hour" in burn["annotations"]["summary"]
    assert float(burn["annotations"]["summary"].split(" spends ")[1].split()[0]) > 20
    assert "access records" in by_name["CcproxyLogRecordsDropped"][0]["annotations"]["summary"]
    [budget] = by_name["CcproxyBudgetSpent"]
    assert (budget["labels"]["budget"], budget["labels"]["action"], budget["labels"]["severity"]) == (
        "opus-daily",
        "block",
        "critical",
    )
    assert "CcproxyTargetDown" not in by_name

    # The same requests, the refused one included, arrived as spans.
    spans = otlp.wait_for(
        lambda: (
            (found := {attributes(span.attributes)["ccproxy.request_id"]: span for _, span in otlp.spans()}).keys()
            >= set(opus_requests)
            and found
        )
    )
    assert [attributes(spans[request_id].attributes).get("error.type") for request_id in opus_requests] == [
        None,
        None,
        None,
        "budget_exceeded",
    ]
    assert any(
        notification["receiver"] == "test-webhook" and notification["version"] == "4"
        for notification in webhook.notifications
    )

    # ccproxy going away is an alert too.
    proxy.stop()
    down = webhook.wait_for([{"alertname": "CcproxyTargetDown"}], timeout=60)
    assert next(a["labels"]["severity"] for a in down if a["labels"]["alertname"] == "CcproxyTargetDown") == "critical"
    prometheus.stop()
    alertmanager.stop()
