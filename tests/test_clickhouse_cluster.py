"""Two ccproxy processes in front of a two-shard ClickHouse cluster, all on loopback.

Two clickhouse-server processes are the two shards of cluster ``ccproxy_cluster`` (each knows
both in its remote_servers). Instance A (two worker processes behind one port) connects to
shard 1, instance B (one process) to shard 2; each creates
what it needs on the servers itself (no distributed DDL, no ZooKeeper) and reads and writes
through the Distributed table. Either instance's /logs API must show every request of both,
exactly once, and the instances' /metrics must add up to the same totals.
"""

from __future__ import annotations

import re

import httpx
import pytest

from ccproxy_core.testing import wait_until
from tests.clickhouse_instances import ANTHROPIC_HEADERS, MESSAGE, Instance, send_mixed
from tests.clickhouse_servers import clickhouse_binary, start_cluster
from tests.test_logs_api_stream import SseReader

CLUSTER = "ccproxy_cluster"

pytestmark = pytest.mark.needs_tool("clickhouse")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, ccproxy_upstream):
    workdir = tmp_path_factory.mktemp("cluster")
    shards = start_cluster(clickhouse_binary(), workdir, CLUSTER)
    instances = []
    try:
        for name, shard in zip(("a", "b"), shards, strict=True):
            instances.append(
                Instance(
                    workdir,
                    name,
                    {
                        "UPSTREAM__ANTHROPIC_BASE_URL": ccproxy_upstream.url,
                        "UPSTREAM__OPENAI_BASE_URL": ccproxy_upstream.url,
                        "OBSERVABILITY__LOGS_COLLECTION_ENABLED": "true",
                        "OBSERVABILITY__LOGS_ENDPOINTS_ENABLED": "true",
                        "OBSERVABILITY__METRICS_ENDPOINT_ENABLED": "true",
                        "OBSERVABILITY__DASHBOARD_ENABLED": "true",
                        "OBSERVABILITY__LOG_STORAGE_BACKEND": "clickhouse",
                        "OBSERVABILITY__CLICKHOUSE_URL": shard.url,
                        "OBSERVABILITY__CLICKHOUSE_CLUSTER": CLUSTER,
                        "OBSERVABILITY__LOG_FLUSH_INTERVAL_SECONDS": "0.1",
                        "SERVER__WORKERS": "2" if name == "a" else "1",
                    },
                )
            )
        yield shards, instances
    finally:
        for instance in instances:
            instance.stop()
        for shard in shards:
            shard.stop()


def stored_ids(instance: Instance, count: int) -> list[str]:
    def ids():
        body = httpx.get(f"{instance.url}/logs/query", params={"limit": 10_000}).json()
        return [row["request_id"] for row in body["results"]] if body.get("count", 0) >= count else None

    return wait_until(ids, timeout=30, interval=0.2)


def requests_total(instance: Instance) -> float:
    text = httpx.get(f"{instance.url}/metrics").text
    return sum(float(value) for value in re.findall(r"^ccproxy_requests_total\{[^}]*\} (\S+)$", text, re.MULTILINE))


def test_instance_a_serves_its_port_from_two_workers(deployment):
    _, (a, b) = deployment
    seen: set[int] = set()
    sent: list[str] = []

    def both_workers_answered() -> bool:
        answer = httpx.post(
            f"{a.url}/v1/messages",
            headers=ANTHROPIC_HEADERS,  # a new connection each time
            json={"model": "claude-haiku-4-5", "max_tokens": 8, "messages": MESSAGE},
        )
        seen.add(int(answer.headers["x-ccproxy-worker"]))
        sent.append(answer.headers["x-ccproxy-request-id"])
        return len(seen) == 2

    wait_until(both_workers_answered, timeout=30, interval=0)
    # Stored before the next test resets the log, so none of these lands after its reset.
    wait_until(lambda: set(sent) <= set(stored_ids(b, 0)), timeout=30, interval=0.2)
    assert "x-ccproxy-worker" not in httpx.get(f"{b.url}/health").headers  # one process: no worker to name


def test_both_instances_show_every_request_exactly_once(deployment):
    shards, (a, b) = deployment
    httpx.post(f"{a.url}/logs/reset")
    before = requests_total(a) + requests_total(b)
    sent = send_mixed(a.url, 4) + send_mixed(b.url, 3)
    for instance in (a, b):
        ids = stored_ids(instance, len(sent))
        assert sorted(ids) == sorted(sent)  # every request, none twice
        analytics = httpx.get(f"{instance.url}/logs/analytics", params={"hours": 1}).json()
        assert analytics["totals"]["requests"] == len(sent)
        assert analytics["totals"]["errors"] == 14  # one 429 and one 500 per round
        assert {p["service_type"]: p["requests"] for p in analytics["by_service_type"]} == {
            "anthropic": 21,
            "openai": 21,
        }
        entries = httpx.get(f"{instance.url}/logs/entries", params={"page_size": 1}).json()
        assert entries["total"] == len(sent)
    per_shard = [shard.query("SELECT count() FROM ccproxy.access_logs_local")[0][0] for shard in shards]
    assert sum(per_shard) == len(sent) and all(count > 0 for count in per_shard)  # spread over both shards
    assert requests_total(a) + requests_total(b) - before == len(sent)
    assert (
        httpx.get(f"{a.url}/logs/analytics").json()["totals"] == httpx.get(f"{b.url}/logs/analytics").json()["totals"]
    )


def test_the_stream_of_one_instance_shows_the_other_instances_requests(deployment):
    _, (a, b) = deployment
    reader = SseReader(f"{a.url}/logs/stream")
    try:
        sent_b = send_mixed(b.url, 1)
        sent_a = send_mixed(a.url, 1)
        wait_until(lambda: {r["request_id"] for r in reader.records()} >= set(sent_a + sent_b), timeout=30)
        ids = [record["request_id"] for record in reader.records()]
        assert sorted(ids) == sorted(sent_a + sent_b)  # each once: its own from memory, B's from the table
    finally:
        reader._stop.set()
        send_mixed(a.url, 1)  # one more line, so the reader sees the stop without waiting for a heartbeat
        reader.close()


def test_dashboard_and_status_on_either_instance(deployment):
    _, (a, b) = deployment
    for instance in (a, b):
        assert httpx.get(f"{instance.url}/dashboard").status_code == 200
        status = httpx.get(f"{instance.url}/logs/status").json()
        assert status["backend"] == "clickhouse" and f"(cluster {CLUSTER})" in status["database_path"]
        assert "ch-s3cret-pw" not in instance.log_text()


def test_reset_on_one_instance_empties_every_shard(deployment):
    shards, (a, b) = deployment
    sent = send_mixed(b.url, 1)
    # These very rows, not only as many (earlier tests' rows count too): one written after the reset would stay.
    wait_until(lambda: set(sent) <= set(stored_ids(a, len(sent))), timeout=30, interval=0.2)
    deleted = httpx.post(f"{a.url}/logs/reset").json()["deleted"]
    assert deleted >= len(sent)
    assert [shard.query("SELECT count() FROM ccproxy.access_logs_local")[0][0] for shard in shards] == [0, 0]
    assert httpx.get(f"{b.url}/logs/query").json()["count"] == 0
