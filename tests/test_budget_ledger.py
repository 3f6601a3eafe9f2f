"""The budget ledger alone, its clock, the shared store's totals given by hand, the retention it needs, and
the requests a spent budget lets through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import anthropic
import httpx
import pytest

from ccproxy_budgets.ledger import Ledger
from ccproxy_budgets.periods import period_bounds
from ccproxy_core.runtime.budget_settings import BudgetSettings
from tests.test_budgets import HELLO, budget


def spend(cost: str, began: datetime) -> SimpleNamespace:
    """What the ledger reads of a finished request's record."""
    return SimpleNamespace(cost_usd=Decimal(cost), timestamp=began, model="claude-haiku-4-5")


def test_a_request_that_began_before_midnight_counts_in_the_day_it_began():
    # Before, it counted in the day it ended; the store, analytics and reports (and so a restart) in
    # the day it began: the budget refused one request more than it would after a restart.
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    now = [midnight - timedelta(seconds=10)]
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 0.03))], notify=lambda notice: None, clock=lambda: now[0])
    now[0] = midnight + timedelta(seconds=5)
    ledger.add(spend("0.018", began=midnight - timedelta(seconds=10)))
    ledger.add(spend("0.018", began=midnight + timedelta(seconds=1)))
    [state] = ledger.budgets
    assert (state.period_start, state.spent) == (midnight, Decimal("0.018"))
    assert ledger.admit(SimpleNamespace(model="claude-haiku-4-5")).refuse_status is None


def test_a_wall_clock_stepped_back_into_the_period_before_counts_its_requests_there():
    # The clock ran ahead into the next day, then was set right: before, the budget stayed on the next
    # day and the requests of the day it really was counted in no period at all, however many.
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    now = [midnight - timedelta(hours=1)]
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 0.03))], notify=lambda notice: None, clock=lambda: now[0])
    ledger.add(spend("0.02", began=now[0]))
    now[0] = midnight + timedelta(hours=11)  # ahead
    assert ledger.admit(SimpleNamespace(model="claude-haiku-4-5")).refuse_status is None
    [state] = ledger.budgets
    assert (state.period_start, state.spent) == (midnight, Decimal(0))
    now[0] = midnight - timedelta(minutes=59)  # set right
    ledger.add(spend("0.015", began=now[0]))
    assert (state.period_end, state.spent) == (midnight, Decimal("0.035"))  # the spend before the step, and after
    assert ledger.admit(SimpleNamespace(model="claude-haiku-4-5")).refuse_status == 429
    ledger.add(spend("0.004", began=midnight + timedelta(hours=11, seconds=1)))  # begun while the clock ran ahead
    assert state.spent == Decimal("0.035")  # it is the next day's
    now[0] = midnight + timedelta(hours=12)
    ledger.roll_over(state)
    assert (state.period_start, state.spent) == (midnight, Decimal("0.004"))


def test_a_request_that_ends_while_the_clock_runs_ahead_counts_when_it_is_set_back():
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    now = [midnight - timedelta(hours=1)]
    notices: list[dict] = []
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 0.03))], notify=notices.append, clock=lambda: now[0])
    ledger.add(spend("0.01", began=now[0]))
    began = now[0] + timedelta(seconds=1)
    now[0] = midnight + timedelta(hours=11)  # ahead, while that request runs
    ledger.add(spend("0.025", began=began))  # yesterday's, as the store counts it
    now[0] = began + timedelta(seconds=5)  # set right
    ledger.roll_over(ledger.budgets[0])
    assert ledger.budgets[0].spent == Decimal("0.035")
    assert [notice["threshold_percent"] for notice in notices] == [50, 80, 100]  # said when it came back
    assert ledger.admit(SimpleNamespace(model="claude-haiku-4-5", endpoint="/v1/messages")).refuse_status == 429


def test_a_threshold_passed_only_by_the_instances_together_is_announced():
    # Each instance spent 0.40 of a 1 USD budget: neither passed 50% alone, the store's total passed 80%.
    notices: dict[str, list[dict]] = {"a": [], "b": []}
    ledgers = {
        name: Ledger([BudgetSettings(**budget("daily", "all", 1.0))], notify=notices[name].append) for name in notices
    }
    for name, ledger in ledgers.items():
        ledger.add(spend("0.40", began=datetime.now(UTC)))
        assert notices[name] == []
        ledger.catch_up(ledger.budgets[0], Decimal("0.80"))
        assert [notice["threshold_percent"] for notice in notices[name]] == [50, 80]


def test_a_retention_shorter_than_a_budgets_period_stops_start_up(proxy_factory, caplog):
    # A restart reads the period's spend back from the store: deleted records would reset the budget.
    with pytest.raises(RuntimeError, match="failed to start"):
        proxy_factory(
            observability={"budgets_enabled": True, "logs_collection_enabled": True, "log_retention_days": 7},
            budgets=[budget("daily", "all", 1.0), budget("monthly", "all", 20.0, period="month")],
        )
    assert "OBSERVABILITY__LOG_RETENTION_DAYS=7 deletes records that budget 'monthly' counts" in caplog.text
    assert "at least 32" in caplog.text


def test_a_retention_a_day_longer_than_every_period_is_taken(proxy_factory):
    observability = {"budgets_enabled": True, "logs_collection_enabled": True, "log_retention_days": 8}
    assert proxy_factory(observability=observability, budgets=[budget("weekly", "all", 5.0, period="week")])


def test_a_retention_is_no_concern_of_a_budget_when_nothing_is_stored(proxy_factory):
    observability = {"budgets_enabled": True, "logs_collection_enabled": False, "log_retention_days": 1}
    assert proxy_factory(observability=observability, budgets=[budget("weekly", "all", 5.0, period="week")])


def test_a_spent_budget_still_lets_free_calls_through(proxy_factory, recorder):
    proxy = proxy_factory(
        plugins=[recorder], observability={"budgets_enabled": True}, budgets=[budget("all", "all", 1e-6)]
    )
    claude = anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0)
    claude.messages.create(model="claude-haiku-4-5", max_tokens=40, messages=HELLO)  # spends it
    recorder.wait_for_ends(1)
    with pytest.raises(anthropic.RateLimitError):
        claude.messages.create(model="claude-haiku-4-5", max_tokens=40, messages=HELLO)
    # Counting tokens and listing models cost nothing: refusing them stops no spend.
    assert claude.messages.count_tokens(model="claude-haiku-4-5", messages=HELLO).input_tokens > 0
    assert claude.models.list().data
    # A path that is never forwarded gets its 404, not a refusal that says spend was stopped.
    assert httpx.post(proxy.url + "/api/hello", headers={"x-api-key": "sk-ant-budget"}).status_code == 404
    records = recorder.wait_for_ends(5)
    assert [(record.endpoint, record.status_code) for record in records[1:]] == [
        ("/v1/messages", 429),
        ("/v1/messages/count_tokens", 200),
        ("/v1/models", 200),
        ("unmatched", 404),
    ]


@pytest.mark.parametrize(
    ("method", "endpoint", "refused"),
    [
        ("POST", "/v1/messages/batches/{batch_id}/cancel", False),  # refusing it would keep spend running
        ("GET", "/v1/messages/batches/{batch_id}/results", False),  # what was paid for
        ("POST", "/v1/batches/{batch_id}/cancel", False),
        ("POST", "/v1/responses/{response_id}/cancel", False),
        ("GET", "/v1/responses/{response_id}", False),
        ("DELETE", "/v1/files/{file_id}", False),
        ("POST", "/v1/messages/batches", True),  # a new batch is new spend
        ("POST", "/v1/batches", True),
        ("POST", "/v1/messages", True),
    ],
)
def test_a_spent_budget_lets_through_what_starts_no_new_spend(method, endpoint, refused):
    ledger = Ledger([BudgetSettings(**budget("all", "all", 0.01))], notify=lambda notice: None)
    ledger.add(spend("0.02", began=datetime.now(UTC)))
    admission = ledger.admit(SimpleNamespace(model="claude-haiku-4-5", method=method, endpoint=endpoint, path=""))
    assert (admission.refuse_status is not None) is refused


@pytest.mark.parametrize(
    ("method", "path", "refused"),
    [
        ("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel", False),  # a running job bills until it is cancelled
        ("POST", "/v1/threads/t1/runs/r1/cancel", False),
        ("GET", "/v1/fine_tuning/jobs/ftjob-1", False),
        ("DELETE", "/v1/vector_stores/vs1", False),
        ("POST", "/v1/fine_tuning/jobs", True),  # starting a job is new spend
    ],
)
def test_on_paths_ccproxy_has_no_name_for_a_spent_budget_lets_reads_deletes_and_cancels_through(method, path, refused):
    ledger = Ledger([BudgetSettings(**budget("all", "all", 0.01))], notify=lambda notice: None)
    ledger.add(spend("0.02", began=datetime.now(UTC)))
    endpoint = "/v1/" + path.split("/")[2] + "/*"
    admission = ledger.admit(SimpleNamespace(model=None, method=method, endpoint=endpoint, path=path))
    assert (admission.refuse_status is not None) is refused


def test_a_late_record_of_the_period_just_left_announces_the_thresholds_it_crossed_there():
    # A stream that began before midnight and ended after it: before, yesterday passed 80% unannounced.
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    now = [midnight - timedelta(hours=1)]
    notices: list[dict] = []
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 0.05))], notify=notices.append, clock=lambda: now[0])
    began = now[0]
    now[0] = midnight + timedelta(minutes=4)
    ledger.add(spend("0.04", began=began))
    assert [(n["threshold_percent"], n["period_end"], n["spent_usd"]) for n in notices] == [
        (50, midnight.isoformat(), 0.04),
        (80, midnight.isoformat(), 0.04),
    ]
    assert ledger.budgets[0].spent == Decimal(0)  # today's spend is untouched
    ledger.add(spend("0.001", began=began))
    assert len(notices) == 2  # each threshold once per period


def test_a_late_record_of_a_period_the_clock_was_set_back_from_is_not_said_to_be_in_the_past(caplog):
    _, midnight = period_bounds(datetime.now(UTC), "day", "UTC")
    now = [midnight + timedelta(minutes=1)]
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 1.0))], notify=lambda notice: None, clock=lambda: now[0])
    ledger.add(spend("0.6", began=midnight + timedelta(seconds=30)))
    now[0] = midnight - timedelta(seconds=10)  # set back by NTP
    with caplog.at_level("WARNING", logger="ccproxy.budgets"):
        ledger.add(spend("0.5", began=midnight + timedelta(seconds=40)))
    [line] = [r.getMessage() for r in caplog.records if "is spent" in r.getMessage()]
    # Before: "1.10 of 1.00 USD in the past day (a request that began before <tomorrow> ended after it)".
    assert f"in the day from {midnight.isoformat()}" in line and "set back" in line


def test_the_remaining_header_never_says_more_is_left_than_is():
    # Before, 0.00195 left was shown as 0.0020 (rounded half-even): more than the budget still allows.
    ledger = Ledger([BudgetSettings(**budget("daily", "all", 0.003))], notify=lambda notice: None)
    ledger.add(spend("0.00105", began=datetime.now(UTC)))
    admission = ledger.admit(SimpleNamespace(model="claude-haiku-4-5"))
    assert admission.headers == (("x-ccproxy-budget-remaining-usd", "daily=0.0019"),)
