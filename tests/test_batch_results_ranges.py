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
BAD_LAST = RESULTS + b'{"custom_id": "9", "result": {"type": "succeeded", "message": {"usage": {"input_tokens": 9}}}} <'
upstream, proxy = upstream_and_proxy_fixtures(
    {
        "first": _partial(0, FIRST - 1),
        "rest": _partial(FIRST, len(RESULTS) - 1),
        "mid": _partial(FIRST + 7, FIRST + 99),
        "bad-last": b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(BAD_LAST) + BAD_LAST,
    }
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


def test_a_fetch_cut_inside_a_line_counts_the_lines_before_it_whatever_the_cut_line_holds():
    # Text the encoder escaped ("\u00fc"), then a cut in its middle: the cut line is no result read and
    # no unreadable one. Before: the fetch was unpriced while its two results were remembered as counted,
    # so no record ever carried their cost.
    escaped = [line.replace(b'"succeeded"', b'"succeeded", "note": "Gr\\u00fc\\u00dfe"') for line in LINES]
    body = b"".join(escaped)
    usage, cost = fetched("anthropic", body[: len(escaped[0]) + len(escaped[1]) + 40])
    assert (usage.input_tokens, cost.total) == (200_000, 2 * ONE)
    usage, cost = fetched("anthropic", body + b'{"custom_id": "x", "result": {"usage": {')  # a last line cut
    assert (usage.input_tokens, cost.total) == (300_000, 3 * ONE)


def test_a_usage_key_escaped_letter_by_letter_is_found_and_escaped_text_alone_is_not_decoded(monkeypatch):
    import ccproxy_core.accounting.batch_results as batch_results

    line = anthropic_line("e", {"input_tokens": 100_000, "output_tokens": 500})
    escaped = line.replace(b'"usage"', b'"us\\u0061g\\u0065"')
    assert fetched("anthropic", escaped)[1].total == ONE
    decoded = []
    monkeypatch.setattr(batch_results, "decode_json", decoded.append)
    fetched("anthropic", b'{"t": "caf\\u00e9", "custom_id": "1"}\n' * 1000)
    assert decoded == []  # a line with escapes but no usage key is skipped after a byte search, as any other


def test_a_whole_answer_whose_last_line_names_usage_but_does_not_read_is_unpriced(proxy, recorder):
    # Sent whole, without a line end: the SDKs read that last line too, and fail on it. Only a fetch cut
    # short may end in a piece of a line.
    assert _get(proxy, "bad-last", "bytes=0-") == BAD_LAST
    [record] = recorder.wait_for_ends(1)
    assert (record.status_code, record.tokens_input, record.cost_usd, record.priced) == (200, 300_000, None, False)


def test_a_whole_refetch_after_a_cut_one_ending_in_a_result_that_does_not_read_is_unpriced():
    from ccproxy_core.accounting.batch_results import BatchResultsParser, batch_cost
    from ccproxy_core.accounting.cost import PriceBook
    from ccproxy_core.accounting.counted_batch_results import CountedBatchResults
    from ccproxy_core.providers import PROVIDERS

    counted, results = CountedBatchResults(), ("anthropic", PATH)

    def settled(body: bytes, read_whole: bool):
        parser = BatchResultsParser(PriceBook().input_thresholds(), counted.counted_before(results))
        parser.feed(body)
        return counted.settle(parser.result(), results, read_whole)

    assert settled(RESULTS[: len(RESULTS) - 5], read_whole=False).input_tokens == 200_000  # cut in the third
    # Fetched again whole: two results, then a last line that names usage but does not read.
    again = settled(LINES[0] + LINES[1] + BAD_LAST[len(RESULTS) :], read_whole=True)
    # Before: the third result was left out as unread and the fetch recorded as a free read ($0, priced).
    assert again.batch is not None and not batch_cost(PriceBook(), PROVIDERS["anthropic"], again.batch).priced
