"""Two ccproxy instances sharing one ClickHouse store stop together at a blocking budget's limit."""

from __future__ import annotations

import anthropic
import pytest

from ccproxy_core.testing import wait_until
from tests.test_budgets import HELLO, budget, budget_metrics
from tests.test_clickhouse_logs_api import clickhouse_storage

# 3,000 tokens in at 1 USD per million and 3,000 out at 5: 0.018 USD a request on Haiku 4.5.
COSTLY = {"x-mock-input-tokens": "3000", "x-mock-delta-count": "1000"}


def test_spend_through_one_instance_stops_the_other(proxy_factory, clickhouse_server):
    settings = clickhouse_storage(
        clickhouse_server.url, budgets_enabled=True, budgets_sync_seconds=0.5, metrics_endpoint_enabled=True
    )
    limit = [budget("haiku-daily", "model:claude-haiku-4-5", 0.054)]
    first, second = (proxy_factory(observability=settings, budgets=limit) for _ in range(2))
    clients = [
        anthropic.Anthropic(base_url=proxy.url, api_key="sk-ant-budget", max_retries=0) for proxy in (first, second)
    ]
    for _ in range(3):
        clients[0].messages.create(model="claude-haiku-4-5", max_tokens=4000, messages=HELLO, extra_headers=COSTLY)
    # The second instance served none of them; it learns of them from the store.
    wait_until(lambda: budget_metrics(second.url)[("ccproxy_budget_spent_usd", "haiku-daily")] >= 0.054, timeout=30)
    with pytest.raises(anthropic.RateLimitError) as refused:
        clients[1].messages.create(model="claude-haiku-4-5", max_tokens=4000, messages=HELLO, extra_headers=COSTLY)
    assert "has spent 0.054 of its 0.054 USD" in refused.value.response.json()["error"]["message"]
