"""Usage of finished batch requests, read from batch results as they pass through ccproxy.

Batch requests run at the provider, out of ccproxy's sight; their results come back as
JSON Lines when a client fetches them: Anthropic's
``GET /v1/messages/batches/{id}/results`` (one ``{"custom_id", "result": {"type":
"succeeded", "message": {...}}}`` per request) and OpenAI's output file,
``GET /v1/files/{id}/content`` (one ``{"custom_id", "response": {"status_code", "body":
{...}}}`` per request, the body a chat completion, a response or an embedding list).

The fetch is recorded as ONE record (one request, one record, as everywhere in ccproxy):
its token counts are the sums over every succeeded result, and its cost is the sum of each
result's cost at its model's batch price (genai-prices' ``processing=batch`` price variant,
else half the standard price, the discount both providers publish). Each result is priced
by its own size, speed and region, as the provider bills it: results are summed only within
a group that shares all of them (the input sizes between two price tiers' starts), so memory
stays bounded by the groups, not the results. The same results fetched again through the same
process count once (:mod:`.counted_batch_results`). A file without result lines (any other
file content) gives an empty usage; a result line too long to read leaves the fetch unpriced.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ccproxy_core.accounting.cost import UNPRICED, Cost, PriceBook
from ccproxy_core.accounting.cost_parts import Secrets, sum_costs
from ccproxy_core.accounting.sse_parser import SSELineSplitter
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers import Provider, anthropic, openai
from ccproxy_core.providers.base import decode_json, spells_with_escapes
from ccproxy_core.providers.openai_responses import read_response_object

# Lines without a usage object cannot change the sums; they are skipped after a byte search. The key may
# be spelt with JSON escapes ("\u0075sage", which the SDKs read as "usage"): looked for only where one is.
_USAGE_MARKER = re.compile(rb'"usage"\s*:\s*\{')
_ESCAPED_USAGE_MARKER = re.compile(rb'"(?:u|\\u0075)(?:s|\\u0073)(?:a|\\u0061)(?:g|\\u0067)(?:e|\\u0065)"\s*:\s*\{')
_ADDED_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "web_search_requests",
    "file_search_requests",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_cache_read_tokens",
    "audio_output_tokens",
    "image_input_tokens",
    "image_cache_read_tokens",
    "image_output_tokens",
)
_PARTS_OF = {"cache_write_1h_tokens": "cache_write_tokens", "reasoning_tokens": "output_tokens"}
"""Counts that are part of another: each result's is added as at most its own whole, as it is priced alone."""
MAX_BATCH_GROUPS = 256
"""Groups of results summed separately (model, speed, region, price tier); results beyond are
priced as an unknown model."""

GroupKey = tuple[str, str | None, str | None, int]


@dataclass(slots=True)
class BatchUsage:
    """Succeeded results of one fetch: their count, and their usage summed by what sets their price."""

    thresholds: tuple[int, ...] = ()
    """Input sizes above which some price changes (``PriceBook.input_thresholds``)."""
    counted_before: int = 0
    """The first results, which an earlier fetch of the same results counted: seen, not added."""
    results: int = 0
    groups: dict[GroupKey, Usage] = field(default_factory=dict)
    unreadable: bool = False
    """A result could not be read whole: the sums are short of the bill."""
    unread_last_line: bool = False
    """The last line, without a line end, names usage but is not JSON: cut short if the fetch was, else a
    result that could not be read (:meth:`CountedBatchResults.settle` decides, knowing which)."""
    model: str | None = None
    """The model every result counted so far names, ``""`` once they differ (a step's own model aside)."""

    def add(self, model: str, usage: Usage) -> None:
        """Add one result's usage (each compaction step on its own, priced by its own size)."""
        self.results += 1
        if self.results <= self.counted_before:
            return
        self.model = model if self.model in (None, model) else ""
        # A charge no price list gives, or a search price of the result's own, cannot be summed by model.
        unsummable = usage.unpriced_charge is not None or usage.web_search_kcount is not None
        self.unreadable = self.unreadable or usage.bad_counts or unsummable
        if not usage.steps:
            self._add_part(model, usage, usage)
            return
        for step in usage.steps:
            self._add_part(model, usage, step)
        tools = Usage(web_search_requests=usage.web_search_requests, file_search_requests=usage.file_search_requests)
        self._add_part(model, usage, tools)

    def _add_part(self, model: str, result: Usage, part: Usage) -> None:
        """Add a result, or one of its steps: a step that names its own model (an advisor's, a
        fallback's) is billed at that model's rates, as it is outside a batch."""
        size = (part.input_tokens or 0) + (part.cache_read_tokens or 0) + (part.cache_write_tokens or 0)
        own_model = part.response_model if part is not result and part.response_model else model
        key: GroupKey = (own_model, result.speed, result.inference_geo, bisect.bisect_left(self.thresholds, size))
        if key not in self.groups and len(self.groups) >= MAX_BATCH_GROUPS:
            key = ("", None, None, 0)
        total = self.groups.get(key)
        if total is None:
            total = self.groups[key] = Usage(
                response_model=key[0], speed=key[1], inference_geo=key[2], tier_input_tokens=size
            )
        for name in _ADDED_FIELDS:
            value = getattr(part, name)
            if value is not None:  # a count of 0 is known: only a count never given stays unknown
                if name in _PARTS_OF:  # else one result's contradiction would price the others' counts
                    value = min(value, getattr(part, _PARTS_OF[name]) or 0)
                setattr(total, name, (getattr(total, name) or 0) + value)


class BatchResultsParser:
    """Reads batch results line by line while they pass through (``StreamUsageParser``'s interface).

    Results are not an event stream: there is no first token, terminal event or stream state.
    """

    __slots__ = ("_lines", "_batch", "_unread_lines")
    state = None
    lost = False  # a result line too large to read leaves the results unpriced (``unreadable``), not unknown

    def __init__(self, thresholds: tuple[int, ...] = (), counted_before: int = 0) -> None:
        self._lines = SSELineSplitter()
        self._batch = BatchUsage(thresholds, counted_before)
        self._unread_lines = 0  # lines naming usage that are not JSON

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk of the body, exactly as it came from the provider (decoded)."""
        block = self._lines.feed(chunk)
        if block and _names_usage(block):
            for line in block.split(b"\n"):
                self._read_line(line)
        return False

    def final_state(self) -> None:
        return None

    def result(self) -> Usage:
        """Summed usage of the results seen so far, with the per-model split in ``batch``."""
        self._batch.unreadable = self._batch.unreadable or self._lines.dropped_lines > 0
        tail = self._lines.tail
        if tail:  # a last line without a line end
            self._read_line(tail, last=True)
            self._lines = SSELineSplitter()
        # Beside results, a line that names usage but does not read is one whose bill is unknown; in a
        # file of no results, it is just text (any file may be downloaded through the same route).
        if self._unread_lines and self._batch.results:
            self._batch.unreadable = True
        return summed_usage(self._batch)

    def _read_line(self, line: bytes, last: bool = False) -> None:
        if not _names_usage(line):
            return
        entry = decode_json(line)
        if not isinstance(entry, dict):
            if last:
                self._batch.unread_last_line = True
            else:
                self._unread_lines += 1
            return
        found = _result_usage(entry)
        if found is not None and found.response_model:
            self._batch.add(found.response_model, found)
        elif found is not None:  # a succeeded result that names no model cannot be priced: nor can the fetch
            self._batch.unreadable = True


def _names_usage(data: bytes) -> bool:
    """Whether ``data`` may hold a ``"usage": {`` key, however its letters are escaped."""
    if _USAGE_MARKER.search(data) is not None:
        return True
    return spells_with_escapes(data) and _ESCAPED_USAGE_MARKER.search(data) is not None


def _result_usage(entry: dict[str, Any]) -> Usage | None:
    """The usage of one succeeded result line of either provider, else ``None``."""
    usage = Usage()
    result = entry.get("result")
    if isinstance(result, dict) and result.get("type") == "succeeded" and isinstance(result.get("message"), dict):
        anthropic.read_payload(usage, result["message"])
        return usage
    response = entry.get("response")
    if isinstance(response, dict) and response.get("status_code") == 200 and isinstance(response.get("body"), dict):
        body = response["body"]
        if body.get("object") == "response":  # a /v1/responses result: its tool calls are billed too
            read_response_object(usage, body)
        else:
            openai.read_payload(usage, body)
        return usage
    return None


def summed_usage(batch: BatchUsage) -> Usage:
    """One ``Usage`` with every group's counts added up; ``batch`` keeps the groups for pricing."""
    usage = Usage(batch=batch)
    for group in batch.groups.values():
        for name in _ADDED_FIELDS:
            value = getattr(group, name)
            if value is not None:
                setattr(usage, name, (getattr(usage, name) or 0) + value)
    if batch.groups:
        usage.service_tier = "batch"  # billed at the batch rate, as each Anthropic result's usage.service_tier says
    if batch.model:
        usage.response_model = batch.model
    return usage


def batch_cost(prices: PriceBook, provider: Provider, batch: BatchUsage, secrets: Secrets | None = None) -> Cost:
    """The cost of ``batch`` at each model's batch price; unpriced when any model is unknown or a result unread.
    ``secrets`` gives the request's keys, kept out of the warning about a model without a price."""
    if batch.unreadable:
        return UNPRICED
    groups = batch.groups.items()
    return sum_costs(
        [
            prices.compute(provider, key[0], replace(usage, service_tier="batch"), secrets=secrets)
            for key, usage in groups
        ]
    )


def results_url_through_proxy(payload: bytes, upstream_base_url: str, proxy_base_url: str) -> bytes:
    """A message batch body whose ``results_url`` points at ccproxy instead of the provider.

    Anthropic's SDKs fetch results from the absolute ``results_url`` the batch carries; left
    pointing at the provider, the fetch would go around ccproxy and the batch's usage would
    never be seen. Only that field's value is changed, and only when it starts with the
    provider's configured base URL.
    """
    if b'"results_url"' not in payload:
        return payload
    old = b'"results_url":"' + upstream_base_url.encode() + b"/"
    new = b'"results_url":"' + proxy_base_url.encode() + b"/"
    spaced_old, spaced_new = old.replace(b'":"', b'": "', 1), new.replace(b'":"', b'": "', 1)
    return payload.replace(old, new).replace(spaced_old, spaced_new)
