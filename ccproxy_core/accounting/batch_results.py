"""Usage of finished batch requests, read from batch results as they pass through ccproxy.

Batch requests run at the provider, out of ccproxy's sight; their results come back as
JSON Lines when a client fetches them: Anthropic's
``GET /v1/messages/batches/{id}/results`` (one ``{"custom_id", "result": {"type":
"succeeded", "message": {...}}}`` per request) and OpenAI's output file,
``GET /v1/files/{id}/content`` (one ``{"custom_id", "response": {"status_code", "body":
{...}}}`` per request, the body a chat completion, a response or an embedding list).

The fetch is recorded as ONE record (one request, one record, as everywhere in ccproxy):
its token counts are the sums over every succeeded result, and its cost is the sum of
each model's usage at that model's batch price (genai-prices' ``processing=batch`` price
variant, else half the standard price, the discount both providers publish). Fetching the
same results twice records their usage twice: each fetch is recorded as it happened.
A file without result lines (any other file content) gives an empty usage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.cost import Cost, PriceBook, sum_costs
from ccproxy_core.accounting.sse_parser import SSELineSplitter
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers import Provider, anthropic, openai
from ccproxy_core.providers.base import decode_json

# Lines without a usage object cannot change the sums; they are skipped after a byte search.
_USAGE_MARKER = re.compile(rb'"usage"\s*:\s*\{')
_TOKEN_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "web_search_requests",
    "reasoning_tokens",
)
MAX_BATCH_MODELS = 64
"""Distinct model names summed separately; results beyond are priced as unknown models."""


@dataclass(slots=True)
class BatchUsage:
    """Succeeded results of one fetch: their count and usage summed per model."""

    results: int = 0
    by_model: dict[str, Usage] = field(default_factory=dict)

    def add(self, model: str, usage: Usage) -> None:
        """Add one result's usage to its model's sums."""
        self.results += 1
        if model not in self.by_model and len(self.by_model) >= MAX_BATCH_MODELS:
            model = ""
        total = self.by_model.setdefault(model, Usage())
        for name in _TOKEN_FIELDS:
            value = getattr(usage, name)
            if value is not None:
                setattr(total, name, (getattr(total, name) or 0) + value)


class BatchResultsParser:
    """Reads batch results line by line while they pass through (``StreamUsageParser``'s interface).

    Results are not an event stream: there is no first token, terminal event or stream state.
    """

    __slots__ = ("_lines", "_batch")
    state = None

    def __init__(self) -> None:
        self._lines = SSELineSplitter()
        self._batch = BatchUsage()

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk of the body, exactly as it came from the provider (decoded)."""
        block = self._lines.feed(chunk)
        if block and _USAGE_MARKER.search(block) is not None:
            for line in block.split(b"\n"):
                self._read_line(line)
        return False

    def final_state(self) -> None:
        return None

    def result(self) -> Usage:
        """Summed usage of the results seen so far, with the per-model split in ``batch``."""
        tail = self._lines.tail
        if tail:  # a last line without a line end
            self._read_line(tail)
            self._lines = SSELineSplitter()
        return summed_usage(self._batch)

    def _read_line(self, line: bytes) -> None:
        if _USAGE_MARKER.search(line) is None:
            return
        entry = decode_json(line)
        if isinstance(entry, dict):
            found = _result_usage(entry)
            if found is not None and found.response_model:
                self._batch.add(found.response_model, found)


def _result_usage(entry: dict[str, Any]) -> Usage | None:
    """The usage of one succeeded result line of either provider, else ``None``."""
    usage = Usage()
    result = entry.get("result")
    if isinstance(result, dict) and result.get("type") == "succeeded" and isinstance(result.get("message"), dict):
        anthropic.read_payload(usage, result["message"])
        return usage
    response = entry.get("response")
    if isinstance(response, dict) and response.get("status_code") == 200 and isinstance(response.get("body"), dict):
        openai.read_payload(usage, response["body"])
        return usage
    return None


def summed_usage(batch: BatchUsage) -> Usage:
    """One ``Usage`` with every model's counts added up; ``batch`` keeps the split for pricing."""
    usage = Usage(batch=batch)
    for per_model in batch.by_model.values():
        for name in _TOKEN_FIELDS:
            value = getattr(per_model, name)
            if value is not None:
                setattr(usage, name, (getattr(usage, name) or 0) + value)
    models = [model for model in batch.by_model if model]
    if len(models) == 1:
        usage.response_model = models[0]
    return usage


def batch_cost(prices: PriceBook, provider: Provider, batch: BatchUsage) -> Cost:
    """The cost of ``batch`` at each model's batch price; unpriced when any model is unknown."""
    return sum_costs([_batch_price(prices, provider, model, usage) for model, usage in batch.by_model.items()])


def _batch_price(prices: PriceBook, provider: Provider, model: str, usage: Usage) -> Cost:
    """genai-prices' batch price of the model where it has one, else half its standard price."""
    usage.service_tier = "batch"
    batch = prices.compute(provider, model, usage)
    usage.service_tier = None
    standard = prices.compute(provider, model, usage)
    if batch != standard or not standard.priced:
        return batch
    return Cost(
        total=_halved(standard.total),
        input=_halved(standard.input),
        output=_halved(standard.output),
        cache_read=_halved(standard.cache_read),
        cache_write=_halved(standard.cache_write),
        priced=True,
        tools=_halved(standard.tools or Decimal(0)),
    )


def _halved(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else amount * Decimal("0.5")


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
