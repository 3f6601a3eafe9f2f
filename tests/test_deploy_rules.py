"""The shipped alert rules and Grafana dashboard: promtool accepts them, and they name only real metrics.

``promtool check rules`` and ``promtool test rules`` (deploy/prometheus/alerts_test.yml) run
here, so CI runs them. Every PromQL expression of the dashboard is checked by promtool too,
through a throwaway rules file, and every metric it or the rules name is one a running
ccproxy (metrics, log store and pushgateway all on) actually exposes.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.tools import tool_path

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "alerts_test.yml"
DASHBOARD = DEPLOY / "grafana" / "ccproxy.json"
# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}
METRIC_NAME = re.compile(r"\b(ccproxy_[a-z0-9_]+)\b")


@pytest.fixture(scope="module")
def promtool() -> str:
    return tool_path("promtool")


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def alert_names() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def alert_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            expressions.append(expression)
    return expressions


def test_promtool_checks_the_rules(promtool):
    result = run([promtool, "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass(promtool):
    result = run([promtool, "test", "rules", str(RULE_TESTS)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test_that_sees_it_fire():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case.get("exp_alerts")}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case.get("exp_alerts")}
    assert set(alert_names()) == fired
    assert set(alert_names()) == quiet


def test_the_dashboard_is_json_with_queries_in_every_panel():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "ccproxy"
    graphs = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert graphs and all(panel["targets"] for panel in graphs)
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_promtool_parses_every_dashboard_query(promtool, tmp_path):
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expression}
        for index, expression in enumerate(dashboard_expressions())
    ]
    check = tmp_path / "dashboard_queries.yml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([promtool, "check", "rules", str(check)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_a_broken_query_would_be_caught(promtool, tmp_path):
    check = tmp_path / "broken.yml"
    check.write_text(
        yaml.safe_dump(
            {"groups": [{"name": "g", "rules": [{"record": "broken", "expr": "sum(rate(ccproxy_requests_total[5m])"}]}]}
        )
    )
    assert run([promtool, "check", "rules", str(check)]).returncode != 0


def exposed_sample_names(proxy_url: str) -> set[str]:
    """Sample names, and the names of families listed without samples yet (``_total`` for counters)."""
    families = list(text_string_to_metric_families(httpx.get(proxy_url + "/metrics", timeout=10).text))
    samples = {sample.name for family in families for sample in family.samples}
    listed = {family.name + ("_total" if family.type == "counter" else "") for family in families}
    return samples | listed


def test_rules_and_dashboard_name_only_metrics_ccproxy_exposes(proxy_factory, upstream):
    # Every plugin that exposes metrics on (budgets too); the Pushgateway address is closed, which only costs failed pushes.
    proxy = proxy_factory(
        observability={
            "metrics_endpoint_enabled": True,
            "logs_collection_enabled": True,
            "budgets_enabled": True,
            "pushgateway_url": "http://127.0.0.1:9",
            "pushgateway_interval_seconds": 60,
        },
        budgets=[{"name": "team-daily", "limit_usd": 25.0}],
    )
    # One request that leaves a sample in every labelled family (a stream, so time to first token too).
    with httpx.stream(
        "POST",
        proxy.url + "/v1/messages",
        headers={"x-api-key": "k"},
        json={
            "model": "claude-haiku-4-5",
            "max_tokens": 5,
            "stream": True,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ) as response:
        response.read()
    httpx.post(
        proxy.url + "/v1/messages",
        headers={"x-api-key": "k", "x-mock-status": "500"},
        json={"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    )
    exposed = exposed_sample_names(proxy.url)
    named = {
        name for expression in alert_expressions() + dashboard_expressions() for name in METRIC_NAME.findall(expression)
    }
    assert named, "no ccproxy metric found in the rules or the dashboard"
    assert named - exposed == set()
