"""Opt-in project and client labels on the request, token and cost counters; never sessions or users."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import wait_until

from .test_attribution_integration import claude_code_request, codex_request

SERIES_FAMILIES = ("ccproxy_requests", "ccproxy_tokens", "ccproxy_cost_usd")


def samples(proxy_url: str, family: str) -> list:
    text = httpx.get(f"{proxy_url}/metrics").text
    return [
        s
        for f in text_string_to_metric_families(text)
        if f.name == family
        for s in f.samples
        if s.name.endswith("_total")
    ]


def test_project_and_client_labels_are_opt_in_and_capped(proxy_factory):
    proxy = proxy_factory(
        observability={
            "metrics_endpoint_enabled": True,
            "metrics_model_label_cap": 2,
            "metrics_attribution_labels": ["project", "client"],
        }
    )
    claude_code_request(proxy.url, "session-a")
    codex_request(proxy.url, "session-b")
    for project in ("second", "third"):
        httpx.post(
            f"{proxy.url}/v1/messages",
            headers={"x-ccproxy-project": project, "x-api-key": "k"},
            json={"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]},
        )
    requests = wait_until(
        lambda: (found := samples(proxy.url, "ccproxy_requests")) and sum(s.value for s in found) == 4 and found
    )
    by_project = {}
    for sample in requests:
        by_project[sample.labels["project"]] = by_project.get(sample.labels["project"], 0) + sample.value
    # Cap 2: (webshop, claude-code) and (unknown, codex) keep their labels; later combinations are other.
    assert by_project == {"webshop": 1, "unknown": 1, "other": 2}
    clients = {s.labels["client"] for s in requests}
    assert clients == {"claude-code", "codex", "other"}
    tokens = samples(proxy.url, "ccproxy_tokens")
    assert {s.labels["project"] for s in tokens} >= {"webshop"} and all("client" in s.labels for s in tokens)
    for family in SERIES_FAMILIES:
        for sample in samples(proxy.url, family):
            assert not {"session", "session_id", "end_user", "user"} & set(sample.labels)


def test_no_attribution_labels_by_default(proxy_factory):
    proxy = proxy_factory(observability={"metrics_endpoint_enabled": True})
    claude_code_request(proxy.url, "session-a")
    requests = wait_until(lambda: samples(proxy.url, "ccproxy_requests"))
    assert set(requests[0].labels) == {"method", "endpoint", "model", "status", "service_type"}


def test_project_and_client_combinations_are_capped_too(proxy_factory):
    cap = 4
    proxy = proxy_factory(
        observability={
            "metrics_endpoint_enabled": True,
            "metrics_model_label_cap": cap,
            "metrics_attribution_labels": ["project", "client"],
        }
    )
    body = {"model": "claude-haiku-4-5", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    sent = [(f"p{p}", f"tool{c}/1.0") for c in range(cap) for p in range(cap)]  # cap**2 combinations
    sent.append(sent[0])  # a combination admitted before the cap was reached keeps its series
    for project, agent in sent:
        headers = {"x-ccproxy-project": project, "user-agent": agent, "x-api-key": "k"}
        assert httpx.post(f"{proxy.url}/v1/messages", headers=headers, json=body).status_code == 200
    requests = wait_until(
        lambda: (found := samples(proxy.url, "ccproxy_requests")) and sum(s.value for s in found) == len(sent) and found
    )
    combinations = {(s.labels["project"], s.labels["client"]): s.value for s in requests}
    # The first `cap` combinations keep their labels; every later new one is counted as other/other.
    first = {(f"p{p}", "tool0"): 1 for p in range(cap)} | {("p0", "tool0"): 2}
    assert combinations == {**first, ("other", "other"): len(sent) - cap - 1}
    for family in SERIES_FAMILIES:
        labelled = {(s.labels["project"], s.labels["client"]) for s in samples(proxy.url, family)}
        assert labelled <= set(combinations)
