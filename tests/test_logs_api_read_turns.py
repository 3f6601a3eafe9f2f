"""Store reads take turns (OBSERVABILITY__LOGS_CONCURRENT_READS at once), and a store's pre-encoded rows reach clients whole."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from ccproxy_core import EncodedRows, PagePosition, QueryPage, hookimpl
from ccproxy_core.testing import make_settings, running_proxy

ROWS = [{"request_id": f"req-{number}", "model": "gpt-5", "note": 'é \u2028 "quoted"'} for number in range(5)]


class CountingStore:
    """A store whose reads wait a moment for company, and note the most that ever ran together."""

    backend = "counting"

    def __init__(self) -> None:
        self.running = 0
        self.most_at_once = 0

    def stats(self):
        return {"queue_depth": 0, "dropped_records": 0, "write_errors": 0, "rows_written": 0, "last_flush_at": None}

    async def query(self, filters, limit, after=None):
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        for _ in range(50):  # up to 1 s for other reads to join, if their turn allows
            if self.running >= 3:
                break
            await asyncio.sleep(0.02)
        self.running -= 1
        return QueryPage(ROWS[:limit], None)


class EncodingStore(CountingStore):
    """The same rows, offered already encoded, in slices of two."""

    async def query_encoded(self, filters, limit, after=None):
        encoded = [json.dumps(row).encode() for row in ROWS[:limit]]
        slices = [b",".join(encoded[start : start + 2]) for start in range(0, len(encoded), 2)]
        last = ROWS[limit - 1]["request_id"] if limit < len(ROWS) else None
        position = PagePosition(datetime(2026, 1, 1, tzinfo=UTC), last) if last else None
        return EncodedRows(slices, len(encoded)), position

    async def session_requests_encoded(self, session_id, limit):
        encoded = [json.dumps(row).encode() for row in ROWS[:limit]]
        return EncodedRows([b",".join(encoded)] if encoded else [], len(encoded))

    async def entries_encoded(self, page, page_size, order_by, order_desc, filters=None):
        encoded = [json.dumps(row).encode() for row in ROWS[:page_size]]
        return EncodedRows([b",".join(encoded)] if encoded else [], len(encoded)), len(ROWS)


class StorePlugin:
    def __init__(self, store) -> None:
        self.store = store

    @hookimpl(tryfirst=True)
    def get_log_store(self, ccproxy):
        return self.store


def serve(upstream_url, tmp_path, store, **observability):
    settings = make_settings(
        upstream_url, tmp_path=tmp_path, observability={"logs_endpoints_enabled": True, **observability}
    )
    return running_proxy(settings, plugins=[StorePlugin(store)])


def three_reads_at_once(url: str) -> list[httpx.Response]:
    with ThreadPoolExecutor(3) as pool:
        return list(pool.map(lambda _: httpx.get(url + "/logs/query", timeout=20), range(3)))


@pytest.mark.parametrize(("turns", "expected"), [(1, 1), (3, 3)])
def test_reads_run_as_many_at_once_as_the_setting_allows(ccproxy_upstream, tmp_path, turns, expected):
    store = CountingStore()
    with serve(ccproxy_upstream.url, tmp_path, store, logs_concurrent_reads=turns) as proxy:
        responses = three_reads_at_once(proxy.url)
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert store.most_at_once == expected


def test_a_zero_read_setting_is_refused(ccproxy_upstream, tmp_path):
    from ccproxy_core.errors import SettingsError

    with pytest.raises((SettingsError, ValueError), match=r"(?i)logs_concurrent_reads"):
        with serve(ccproxy_upstream.url, tmp_path, CountingStore(), logs_concurrent_reads=0):
            pass


def test_pre_encoded_rows_make_the_same_answer_as_dicts(ccproxy_upstream, tmp_path):
    with serve(ccproxy_upstream.url, tmp_path, CountingStore()) as plain:
        expected = httpx.get(plain.url + "/logs/query", params={"limit": 3}, timeout=10).json()
    with serve(ccproxy_upstream.url, tmp_path, EncodingStore()) as encoding:
        response = httpx.get(encoding.url + "/logs/query", params={"limit": 3}, timeout=10)
        entries = httpx.get(encoding.url + "/logs/entries", params={"page_size": 4}, timeout=10)
        empty = httpx.get(encoding.url + "/logs/entries", params={"page": 9, "page_size": 0}, timeout=10)
        session = httpx.get(encoding.url + "/logs/sessions/s-1", params={"limit": 2}, timeout=10)
    answer = response.json()
    assert int(response.headers["content-length"]) == len(response.content)
    assert answer["results"] == expected["results"] == ROWS[:3]
    assert answer["count"] == 3 and answer["limit"] == 3 and answer["next_cursor"]
    assert list(answer) == list(expected) and answer["filters"] == expected["filters"]
    assert entries.json()["results"] == ROWS[:4] and entries.json()["total"] == len(ROWS)
    assert empty.status_code == 422  # page_size must be at least 1
    assert session.json() == {"requests": ROWS[:2], "session_id": "s-1", "count": 2, "limit": 2, "truncated": False}


class FailingStore(CountingStore):
    async def query_encoded(self, *args, **kwargs):
        raise ConnectionError("the store is away")

    async def query(self, *args, **kwargs):
        raise ConnectionError("the store is away")


def test_a_store_that_keeps_failing_is_logged_with_its_traceback_once_per_interval(ccproxy_upstream, tmp_path, caplog):
    # A dashboard polls every few seconds: one traceback per failed read would fill the log.
    with serve(ccproxy_upstream.url, tmp_path, FailingStore()) as proxy, caplog.at_level("ERROR", "ccproxy.logs_api"):
        answers = [httpx.get(proxy.url + "/logs/query") for _ in range(5)]
    assert {answer.status_code for answer in answers} == {503}
    assert answers[0].json()["detail"] == "the log store could not answer: the store is away"
    assert len([record for record in caplog.records if "failed to answer" in record.getMessage()]) == 1
