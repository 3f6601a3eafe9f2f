"""Label cardinality is bounded: thousands of invented model names and paths add no metric series.

Models beyond OBSERVABILITY__METRICS_MODEL_LABEL_CAP share the label ``other``; every API path
ccproxy has no name for is forwarded and shares the endpoint label ``/v1/*``, every path outside
the provider APIs shares ``unmatched``. Shown on /metrics of a real server after
thousands of such requests: the number of series stops growing once the cap is reached.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import aiohttp
import httpx
from prometheus_client.parser import text_string_to_metric_families

from ccproxy_core.testing import wait_until

MODEL_CAP = 20
ANTHROPIC = {"x-api-key": "sk-ant-cardinality", "anthropic-version": "2023-06-01"}
OPENAI = {"authorization": "Bearer sk-cardinality"}
HELLO = [{"role": "user", "content": "hi"}]
KNOWN_ENDPOINTS = {"/v1/messages", "/v1/chat/completions", "/v1/*", "unmatched"}


async def invent(proxy_url: str, first: int, count: int) -> Counter:
    """``count`` requests with a new model name each and ``count`` to a new unknown path each; statuses seen."""

    async def model_request(session: aiohttp.ClientSession, number: int) -> int:
        if number % 2:
            body = {"model": f"invented-claude-{number}", "max_tokens": 5, "messages": HELLO}
            request = session.post("/v1/messages", json=body, headers=ANTHROPIC)
        else:
            request = session.post(
                "/v1/chat/completions", json={"model": f"invented-gpt-{number}", "messages": HELLO}, headers=OPENAI
            )
        async with request as response:
            await response.read()
            return response.status

    async def path_request(session: aiohttp.ClientSession, number: int) -> int:
        # Odd: under /v1/, forwarded (the mock answers 404); even: outside the APIs, ccproxy's 404.
        path = f"/v1/invented-{number}/path" if number % 2 else f"/invented/{number}/path"
        async with session.get(path, headers=OPENAI) as response:
            await response.read()
            return response.status

    gate = asyncio.Semaphore(64)

    async def limited(call, session, number) -> int:
        async with gate:
            return await call(session, number)

    async with aiohttp.ClientSession(proxy_url, connector=aiohttp.TCPConnector(limit=64)) as session:
        numbers = range(first, first + count)
        statuses = await asyncio.gather(
            *(limited(model_request, session, n) for n in numbers),
            *(limited(path_request, session, n) for n in numbers),
        )
    return Counter(statuses)


def series(proxy_url: str) -> list[tuple[str, dict[str, str]]]:
    """Every sample on /metrics: (name, labels)."""
    text = httpx.get(proxy_url + "/metrics").text
    return [
        (sample.name, sample.labels) for family in text_string_to_metric_families(text) for sample in family.samples
    ]


def requests_counted(proxy_url: str) -> int:
    text = httpx.get(proxy_url + "/metrics").text
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "ccproxy_requests_total"
        )
    )


def test_invented_models_and_paths_share_labels_and_add_no_series(proxy_factory):
    proxy = proxy_factory(observability={"metrics_endpoint_enabled": True, "metrics_model_label_cap": MODEL_CAP})
    assert asyncio.run(invent(proxy.url, 0, 200)) == {200: 200, 404: 200}
    wait_until(lambda: requests_counted(proxy.url) == 400)
    after_cap = series(proxy.url)

    assert asyncio.run(invent(proxy.url, 200, 2000)) == {200: 2000, 404: 2000}
    wait_until(lambda: requests_counted(proxy.url) == 4400)
    after_thousands = series(proxy.url)

    assert len(after_thousands) == len(after_cap)  # the same series; only their values grew
    assert {(name, tuple(sorted(labels.items()))) for name, labels in after_thousands} == {
        (name, tuple(sorted(labels.items()))) for name, labels in after_cap
    }
    models = {labels["model"] for _name, labels in after_thousands if "model" in labels}
    assert len(models - {"other", "unknown"}) == MODEL_CAP and {"other", "unknown"} <= models
    endpoints = {labels["endpoint"] for _name, labels in after_thousands if "endpoint" in labels}
    assert endpoints == KNOWN_ENDPOINTS
    unmatched = sorted(
        (labels["endpoint"], tuple(sorted(labels.items())))
        for name, labels in after_thousands
        if name == "ccproxy_requests_total" and labels["endpoint"] in ("unmatched", "/v1/*")
    )
    assert [dict(labels) for _endpoint, labels in unmatched] == [
        {"method": "GET", "endpoint": endpoint, "model": "unknown", "status": "404", "service_type": "openai"}
        for endpoint in ("/v1/*", "unmatched")
    ], unmatched
