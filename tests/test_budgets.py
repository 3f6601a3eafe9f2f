"""Spending budgets through a real ccproxy: blocking with the provider's error shape, warnings,
notices to a webhook at 50/80/100%, metrics, and spend read back from the store after a restart."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_budgets.lifecycle import STATE_ATTRIBUTE
from ccproxy_budgets.periods import period_bounds
from ccproxy_core import hookimpl
from ccproxy_core.accounting.attribution import key_fingerprint
from ccproxy_core.runtime.settings_loader import load_settings
from ccproxy_core.testing import wait_until
from tests.alerting_servers import WebhookReceiver

HELLO = [{"role": "user", "content": "hello"}]
# 100 deltas are 300 output tokens: 0.0015 USD at Haiku 4.5 prices.
LONG_ANSWER = {"x-mock-delta-count": "100"}


def budget(name: str, scope: str, limit_usd: float, action: str = "block", **more) -> dict:
    return {"name": name, "scope": scope, "limit_usd": limit_usd, "action": action, **more}


@pytest.fixture
def webhook():
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()


def budget_metrics(proxy_url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(proxy_url + "/metrics").text
    return {
        (sample.name, sample.labels["budget"]): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("ccproxy_budget_")
    }


def test_a_blocking_daily_budget_stops_each_provider_at_its_limit(webhook, proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder],
        observability={"budgets_enabled": True, "budgets_webhook_url": webhook.url, "metrics_endpoint_enabled": True},
        budgets=[
            budget("haiku-daily", "model:claude-haiku-4-5", 0.004),
            budget("mini-daily", "model:gpt-4o-mini", 0.00001),
        ],
    )
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    left = []
    for _ in range(3):
        answer = claude.messages.with_raw_response.create(
            model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER
        )
        left.append(answer.headers["x-ccproxy-budget-remaining-usd"])
        recorder.wait_for_ends(len(left))
    assert left == ["haiku-daily=0.0040", "haiku-daily=0.0024", "haiku-daily=0.0009"]  # rounded down

    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO)
    body = refused.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["request_id"] == refused.value.response.headers["x-ccproxy-request-id"]  # as Anthropic names its own
    assert refused.value.request_id == body["request_id"]  # the SDK reads the request-id header
    assert "haiku-daily" in body["error"]["message"]
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    started = time.monotonic()
    with pytest.raises(anthropic.RateLimitError):  # with the SDK's own retries on, as users run it
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget").messages.create(
            model="claude-haiku-4-5", max_tokens=400, messages=HELLO
        )
    assert time.monotonic() - started < 10  # before: the SDK slept until midnight, as retry-after said
    retry_after = int(refused.value.response.headers["retry-after"])
    assert abs(retry_after - math.ceil((midnight - datetime.now(UTC)).total_seconds())) <= 5

    gpt = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-budget", max_retries=0)
    gpt.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    recorder.wait_for_ends(6)
    with pytest.raises(openai.RateLimitError) as refused_openai:
        gpt.chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    assert refused_openai.value.response.json()["error"]["type"] == "insufficient_quota"
    assert refused_openai.value.response.json()["error"]["code"] == "insufficient_quota"  # as OpenAI's own quota error
    assert "mini-daily" in refused_openai.value.response.json()["error"]["message"]
    assert refused_openai.value.request_id == refused_openai.value.response.headers["x-ccproxy-request-id"]

    records = recorder.wait_for_ends(7)
    refusals = [record for record in records if record.status_code == 429]
    assert [(r.error_type, r.upstream_status, r.cost_usd, r.priced) for r in refusals] == [
        ("budget_exceeded", None, 0, True)
    ] * 3

    notices = wait_until(lambda: len(webhook.notifications) >= 6 and webhook.notifications)
    haiku = [n for n in notices if n["budget"] == "haiku-daily"]
    assert [n["threshold_percent"] for n in haiku] == [50, 80, 100]
    haiku_spent = float(sum(r.cost_usd or 0 for r in records if r.model == "claude-haiku-4-5"))
    assert haiku_spent > 0.004
    # The refusal names what was spent, to the millionth: a small budget is not "0.00 of its 0.00".
    assert f"has spent {haiku_spent:.6f}".rstrip("0") + " of its 0.004 USD for this day" in body["error"]["message"]
    assert haiku[-1]["spent_usd"] == pytest.approx(haiku_spent) and haiku[-1]["limit_usd"] == 0.004
    assert [n["threshold_percent"] for n in notices if n["budget"] == "mini-daily"] == [50, 80, 100]

    metrics = budget_metrics(proxy.url)
    assert metrics[("ccproxy_budget_spent_usd", "haiku-daily")] == pytest.approx(haiku_spent)
    assert metrics[("ccproxy_budget_limit_usd", "haiku-daily")] == 0.004
    assert metrics[("ccproxy_budget_refused_requests_total", "haiku-daily")] == 2


def test_a_scrape_after_the_period_ended_shows_the_new_period_before_any_request(proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder],
        observability={"budgets_enabled": True, "metrics_endpoint_enabled": True},
        budgets=[budget("haiku-daily", "model:claude-haiku-4-5", 0.001)],
    )
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER)
    yesterday = float(recorder.wait_for_ends(1)[0].cost_usd)
    assert budget_metrics(proxy.url)[("ccproxy_budget_spent_usd", "haiku-daily")] == pytest.approx(yesterday)

    observer = getattr(proxy.app.state, STATE_ATTRIBUTE)[0]
    [state] = observer.ledger.budgets
    state.period_end = datetime.now(UTC)  # as if the day had just ended
    metrics = budget_metrics(proxy.url)  # no request since midnight
    assert metrics[("ccproxy_budget_spent_usd", "haiku-daily")] == 0
    assert metrics[("ccproxy_budget_limit_usd", "haiku-daily")] == 0.001

    claude.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO)
    today = float(recorder.wait_for_ends(2)[1].cost_usd)
    assert budget_metrics(proxy.url)[("ccproxy_budget_spent_usd", "haiku-daily")] == pytest.approx(today)


def test_project_and_key_budgets_stop_only_their_own_requests(proxy_factory, recorder):
    from ccproxy_core.accounting.attribution.keys import key_fingerprint

    team_key = "sk-ant-team-alpha"
    proxy = proxy_factory(
        plugins=[recorder],
        observability={"budgets_enabled": True},
        budgets=[
            budget("alpha-daily", "project:alpha", 0.0001),
            budget("team-key", f"api_key:{key_fingerprint(team_key)}", 0.0001),
        ],
    )
    alpha = anthropic.Anthropic(
        base_url=proxy.url, api_key="sk-ant-other", max_retries=0, default_headers={"x-ccproxy-project": "alpha"}
    )
    beta = anthropic.Anthropic(
        base_url=proxy.url, api_key="sk-ant-other", max_retries=0, default_headers={"x-ccproxy-project": "beta"}
    )
    team = anthropic.Anthropic(base_url=proxy.url, api_key=team_key, max_retries=0)
    for client in (alpha, team):
        client.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER)
    recorder.wait_for_ends(2)
    for client in (alpha, team):
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO)
    assert beta.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO).content
    records = recorder.wait_for_ends(5)
    assert [(r.project, r.status_code) for r in records] == [
        ("alpha", 200),
        (None, 200),
        ("alpha", 429),
        (None, 429),
        ("beta", 200),
    ]


def test_a_warning_budget_lets_requests_through_and_says_so(proxy_factory, recorder, caplog):
    proxy = proxy_factory(
        plugins=[recorder],
        observability={"budgets_enabled": True, "metrics_endpoint_enabled": True},
        budgets=[budget("team-daily", "all", 0.001, action="warn")],
    )
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    with caplog.at_level(logging.WARNING, logger="ccproxy.budgets"):
        for _ in range(3):
            answer = claude.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER
            )
            assert answer.status_code == 200
        recorder.wait_for_ends(3)
    assert answer.headers["x-ccproxy-budget-remaining-usd"] == "team-daily=0.0000"
    assert [r.getMessage() for r in caplog.records if "team-daily is spent" in r.getMessage()] == [
        "budget team-daily is spent: 0.001501 of 0.001 USD this day (warning only)"
    ]
    assert budget_metrics(proxy.url)[("ccproxy_budget_spent_usd", "team-daily")] > 0.001


@pytest.mark.parametrize("pushing", [False, True], ids=["", "pushgateway-on"])
def test_spend_is_read_back_from_the_store_after_a_restart(proxy_factory, recorder, pushing):
    observability = {"budgets_enabled": True, "logs_collection_enabled": True, "log_flush_interval_seconds": 0.05}
    if pushing:  # nothing listens there: the pushes fail, and are only logged
        observability["pushgateway_url"] = "http://127.0.0.1:9"
    sections = {
        "observability": observability,
        "budgets": [budget("haiku-daily", "model:claude-haiku-4-5", 0.004)],
    }
    first = proxy_factory(plugins=[recorder], **sections)
    claude = anthropic.Anthropic(base_url=first.url, api_key="sk-ant-budget", max_retries=0)
    for _ in range(3):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER)
    recorder.wait_for_ends(3)
    first.stop()  # the writer flushes every record on shutdown

    second = proxy_factory(**sections)  # the same DuckDB file
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(base_url=second.url, api_key="sk-ant-budget", max_retries=0).messages.create(
            model="claude-haiku-4-5", max_tokens=5, messages=HELLO
        )
    other = anthropic.Anthropic(base_url=second.url, api_key="sk-ant-budget", max_retries=0).messages.create(
        model="claude-opus-4-5", max_tokens=5, messages=HELLO
    )
    assert other.content  # another model is not under this budget


@pytest.mark.parametrize(
    ("scope", "headers"),
    [
        ("project:apollo", {"x-ccproxy-project": "apollo"}),
        ("session:run-42", {"x-ccproxy-session": "run-42"}),
        (f"api_key:{key_fingerprint('sk-ant-budget').upper()}", {}),  # as a fingerprint may be copied
    ],
)
def test_attribution_scopes_read_their_spend_back_after_a_restart(proxy_factory, recorder, scope, headers):
    sections = {
        "observability": {"budgets_enabled": True, "logs_collection_enabled": True, "log_flush_interval_seconds": 0.05},
        "budgets": [budget("scoped-daily", scope, 0.004)],
    }
    first = proxy_factory(plugins=[recorder], **sections)
    claude = anthropic.Anthropic(base_url=first.url, api_key="sk-ant-budget", max_retries=0, default_headers=headers)
    for _ in range(3):  # 3 x 0.0015 USD: over the limit
        claude.messages.create(model="claude-haiku-4-5", max_tokens=400, messages=HELLO, extra_headers=LONG_ANSWER)
    recorder.wait_for_ends(3)
    first.stop()

    second = proxy_factory(**sections)  # the same DuckDB file
    after = anthropic.Anthropic(base_url=second.url, api_key="sk-ant-budget", max_retries=0, default_headers=headers)
    with pytest.raises(anthropic.RateLimitError, match="scoped-daily"):
        after.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO)
    outside = anthropic.Anthropic(base_url=second.url, api_key="sk-ant-other", max_retries=0)
    assert outside.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO).content


def test_budgets_on_without_any_budget_stop_start_up(proxy_factory):
    with pytest.raises(RuntimeError, match="failed to start"):
        proxy_factory(observability={"budgets_enabled": True})


def test_a_webhook_url_that_is_not_one_stops_start_up_without_being_shown(proxy_factory, caplog):
    with pytest.raises(RuntimeError, match="failed to start") as refused:
        proxy_factory(
            observability={"budgets_enabled": True, "budgets_webhook_url": "notaurl?token=SeCrEt7"},
            budgets=[budget("daily", "all", 1.0)],
        )
    assert "SeCrEt7" not in str(refused.value) + caplog.text
    assert "OBSERVABILITY__BUDGETS_WEBHOOK_URL is not an http(s) URL" in caplog.text


def test_the_documented_team_budget_loads_from_a_config_file(tmp_path, monkeypatch):
    guide = (Path(__file__).resolve().parent.parent / "docs" / "budgets.md").read_text()
    example = guide.split("# ~/.config/ccproxy/config.toml\n", 1)[1].split("```", 1)[0]
    config = tmp_path / "config.toml"
    config.write_text(example)
    monkeypatch.chdir(tmp_path)  # no stray .env
    settings = load_settings(config)
    assert settings.observability.budgets_enabled and settings.observability.budgets_webhook_format == "slack"
    assert settings.upstream.openai_stream_include_usage
    assert [(b.name, b.scope, b.period, b.timezone, b.limit_usd, b.action) for b in settings.budgets] == [
        ("team-daily", "all", "day", "Europe/Paris", 25.0, "block"),
        ("opus-daily", "model:claude-opus-4-1", "day", "UTC", 10.0, "warn"),
    ]


UNCOUNTED_STREAMS = "UPSTREAM__OPENAI_STREAM_INCLUDE_USAGE is off: OpenAI chat completion streams"


def stream_chat(client: openai.OpenAI) -> None:
    """The openai SDK's default streaming call: it does not ask for usage."""
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, stream=True):
        pass


def test_a_blocking_budget_warns_once_that_openai_streams_go_uncounted(proxy_factory, recorder, caplog):
    with caplog.at_level(logging.WARNING, logger="ccproxy.budgets"):
        proxy = proxy_factory(
            plugins=[recorder],
            observability={"budgets_enabled": True},
            budgets=[budget("mini-daily", "model:gpt-4o-mini", 0.00001), budget("all-daily", "all", 5, action="warn")],
        )
    warnings = [r.getMessage() for r in caplog.records if UNCOUNTED_STREAMS in r.getMessage()]
    assert len(warnings) == 1 and "blocking budgets (mini-daily)" in warnings[0]
    gpt = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-budget", max_retries=0)
    for _ in range(3):  # what the warning says: none of them is counted, so none is refused
        stream_chat(gpt)
    assert [(r.status_code, r.cost_usd) for r in recorder.wait_for_ends(3)] == [(200, None)] * 3


def test_with_usage_asked_for_openai_streams_count_and_no_warning(proxy_factory, recorder, caplog):
    with caplog.at_level(logging.WARNING, logger="ccproxy.budgets"):
        proxy = proxy_factory(
            plugins=[recorder],
            upstream={"openai_stream_include_usage": True},
            observability={"budgets_enabled": True},
            budgets=[budget("mini-daily", "model:gpt-4o-mini", 0.00001)],
        )
        proxy_factory(observability={"budgets_enabled": True}, budgets=[budget("all-daily", "all", 5, action="warn")])
    assert UNCOUNTED_STREAMS not in caplog.text
    gpt = openai.OpenAI(base_url=proxy.url + "/v1", api_key="sk-budget", max_retries=0)
    stream_chat(gpt)
    assert recorder.wait_for_ends(1)[0].cost_usd
    with pytest.raises(openai.RateLimitError):
        stream_chat(gpt)


def test_spend_that_lands_exactly_on_the_limit_is_refused(proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder],
        observability={"budgets_enabled": True},
        budgets=[budget("haiku-daily", "model:claude-haiku-4-5", 0.054)],
    )
    # 3,000 tokens in at 1 USD per million and 3,000 out at 5: 0.018 USD; three are 0.054, and as
    # floats 0.018 + 0.018 + 0.018 = 0.05399999999999999, which let a fourth through.
    costly = {"x-mock-input-tokens": "3000", "x-mock-delta-count": "1000"}
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    for sent in range(1, 4):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=4000, messages=HELLO, extra_headers=costly)
        recorder.wait_for_ends(sent)
    assert [str(record.cost_usd) for record in recorder.ends] == ["0.018"] * 3
    with pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=4000, messages=HELLO, extra_headers=costly)
    assert "has spent 0.054 of its 0.054 USD" in refused.value.response.json()["error"]["message"]


class StoreAwayAtStartUp:
    """A log store that cannot answer until ``back`` is set, then says 0.01 USD was spent (by other instances)."""

    def __init__(self) -> None:
        self.back = False

    @hookimpl
    def get_log_store(self):
        return self

    async def analytics(self, filters, bucket):
        if not self.back:
            raise ConnectionError("the store is away")
        return {"cost": {"total_usd": 0.01}}


def test_a_budget_whose_start_up_read_failed_asks_the_store_again_until_it_answers(proxy_factory, monkeypatch):
    # Before, it stayed at 0 for the rest of the period: a restart during a store outage reset the budget.
    monkeypatch.setattr("ccproxy_budgets.lifecycle.START_RETRY_SECONDS", 0.1)
    store = StoreAwayAtStartUp()
    proxy = proxy_factory(
        plugins=[store],
        observability={"budgets_enabled": True, "metrics_endpoint_enabled": True},
        budgets=[budget("all-daily", "all", 0.004)],
    )
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    assert claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO).content  # counted from 0
    store.back = True
    wait_until(lambda: budget_metrics(proxy.url).get(("ccproxy_budget_spent_usd", "all-daily"), 0) >= 0.01)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=HELLO)
