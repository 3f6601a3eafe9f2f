"""The Grafana dashboard's own figures, evaluated by promtool on series a ccproxy would expose.

The "Error ratio" panel leaves out what the error-rate alert leaves out: clients hanging up, budget
refusals, and requests to paths outside the provider APIs (``endpoint="unmatched"``, a client's wrong
base URL, answered 404 by ccproxy itself with no provider called). The "Cache hit share" panel shows 0,
not "no data", when there are prompt tokens but no cache reads.
"""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from tests.test_deploy_rules import DASHBOARD, GRAFANA_VARIABLES
from tests.tools import tool_path


def panel_expression(title: str) -> str:
    [panel] = [panel for panel in json.loads(DASHBOARD.read_text())["panels"] if panel.get("title") == title]
    expression = panel["targets"][0]["expr"]
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    return expression


def evaluated(tmp_path, expression: str, series: dict[str, str]) -> subprocess.CompletedProcess:
    """promtool's unit test of ``expression`` at 10 minutes, expecting 0, over ``series`` (name: values)."""
    test = {
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": name, "values": values} for name, values in series.items()],
                "promql_expr_test": [
                    {"expr": expression, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": 0}]}
                ],
            }
        ],
    }
    path = tmp_path / "dashboard_test.yml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run(
        [tool_path("promtool"), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("wrong_base_url_requests", ["0+30x10", "0+0x10"])
def test_the_error_ratio_panel_leaves_out_requests_no_provider_was_called_for(tmp_path, wrong_base_url_requests):
    series = {
        'ccproxy_requests_total{instance="a", endpoint="/v1/messages", status="200"}': "0+60x10",
        'ccproxy_requests_total{instance="a", endpoint="unmatched", status="404"}': wrong_base_url_requests,
        'ccproxy_errors_total{instance="a", endpoint="unmatched", error_type="not_found"}': wrong_base_url_requests,
    }
    result = evaluated(tmp_path, panel_expression("Error ratio"), series)
    # Before: a third of the traffic shown as failing, while the alert saw none.
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cache_hit_share_panel_shows_zero_without_cache_reads(tmp_path):
    series = {'ccproxy_tokens_total{instance="a", type="input"}': "0+1000x10"}
    result = evaluated(tmp_path, panel_expression("Cache hit share of prompt tokens"), series)
    assert result.returncode == 0, result.stdout + result.stderr  # before: no data
