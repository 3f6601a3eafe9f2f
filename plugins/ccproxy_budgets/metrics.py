"""Budget gauges for the app's Prometheus registry, read from the ledger at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ccproxy_budgets.ledger import Ledger


class BudgetCollector(Collector):
    """``ccproxy_budget_spent_usd``, ``ccproxy_budget_limit_usd`` and ``ccproxy_budget_refused_requests_total``."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        labels = ["budget", "scope", "action"]
        spent = GaugeMetricFamily(
            "ccproxy_budget_spent_usd", "US dollars spent in the budget's current period.", labels=labels
        )
        limit = GaugeMetricFamily(
            "ccproxy_budget_limit_usd", "The budget's limit per period, in US dollars.", labels=labels
        )
        refused = CounterMetricFamily(
            "ccproxy_budget_refused_requests", "Requests refused because the budget was spent.", labels=labels
        )
        # The period may have ended since the last covered request rolled it over.
        now = self.ledger.clock()
        for state in self.ledger.budgets:
            values = [state.settings.name, state.settings.scope, state.settings.action]
            spent.add_metric(values, float(state.spent_at(now)))
            limit.add_metric(values, state.settings.limit_usd)
            refused.add_metric(values, state.refused)
        yield from (spent, limit, refused)
