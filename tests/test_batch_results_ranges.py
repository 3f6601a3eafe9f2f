"""Batch results fetched in byte ranges, and result lines that spell their keys with JSON escapes.

Results are counted by their place from the first, so that a fetch cut short and fetched again
counts each result once. A range that starts further on (``206`` with ``Content-Range: bytes 1437-``,
as a resumed or segmented download asks) holds results whose places are unknown: its cost is unknown.
Prices: Claude Sonnet 4.5 at the batch rate, half of $3 in and $15 out per million.
"""

from __future__ import annotations

from decimal import Decimal

import anthropic

from .raw_upstream import upstream_and_proxy_fixtures
from .test_batch_pricing import MTOK, anthropic_line, fetched

LINES = [anthropic_line(str(i), {"input_tokens": 100_000, "output_tokens": 500}) for i in range(3)]
RESULTS = b"".join(LINES)
ONE = (100_000 * 3 + 500 * 15) / MTOK / 2
PATH = "/v1/messages/batches/msgbatch_1/results"


def _partial(start: int, end: int) -> bytes:
    body = RESULTS[start : end + 1]
    head = b"HTTP/1.1 206 Partial Content\r\ncontent-type: application/binary\r\ncontent-length: %d\r\n" % len(body)
    return head + b"content-range: bytes %d-%d/%d\r\n\r\n" % (start, end, len(RESULTS)) + body


FIRST = len(LINES[0])
upstream, proxy = upstream_and_proxy_fixtures(
    {"first": _partial(0, FIRST - 1), "rest": _partial(FIRST, len(RESULTS) - 1), "mid": _partial(FIRST + 7, FIRST + 99)}
)


def _get(proxy, answer: str, range_header: str) -> bytes:
    client = anthropic.Anthropic(api_key="sk-ant-test", base_url=proxy.url, max_retries=0)
    return client.get(PATH, cast_to=bytes, options={"headers": {"x-raw": answer, "range": range_header}})


def test_a_range_from_the_first_byte_counts_its_results_and_one_from_further_on_is_unpriced(proxy, recorder):
    assert _get(proxy, "first", f"bytes=0-{FIRST - 1}") == LINES[0]
    assert _get(proxy, "rest", f"bytes={FIRST}-") == b"".join(LINES[1:])
    first, rest = recorder.wait_for_ends(2)
    assert (first.status_code, first.tokens_input, first.cost_usd) == (206, 100_000, ONE)
    # Before: the rest counted as if it began with the first result, which was left out as counted: one of its
    # two results was never billed, at a cost shown as known.
    assert (rest.status_code, rest.cost_usd, rest.priced) == (206, None, False)


def test_a_range_starting_mid_line_passes_unchanged_and_unpriced(proxy, recorder):
    assert _get(proxy, "mid", f"bytes={FIRST + 7}-{FIRST + 99}") == RESULTS[FIRST + 7 : FIRST + 100]
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.cost_usd, record.priced) == (206, None, False)


def test_a_result_whose_usage_key_is_spelt_with_an_escape_is_counted():
    escaped = anthropic_line("e", {"input_tokens": 100_000, "output_tokens": 500}).replace(b'"usage"', b'"\\u0075sage"')
    usage, cost = fetched("anthropic", LINES[0] + escaped)
    # Before: the escaped line was skipped unread, and the fetch priced at one result of the two.
    assert (usage.input_tokens, cost.total) == (200_000, 2 * ONE)
    assert cost.total == Decimal("0.3075")
