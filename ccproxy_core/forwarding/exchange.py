"""One request/response exchange in flight: what the proxy observed, and the final record."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from multidict import CIMultiDict

from ccproxy_core.accounting.batch_results import batch_cost
from ccproxy_core.accounting.cost import UNPRICED, Cost, PriceBook
from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.forwarding.credentials import credential_values
from ccproxy_core.forwarding.outcome import Failure, Observed, Outcome, decide
from ccproxy_core.providers import Provider
from ccproxy_core.providers.base import StreamState
from ccproxy_core.providers.openai import STORED_RESPONSE

_COUNTS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "web_search_requests",
)
"""The usage counts a record shows; unknown (null) when part of the answer could not be read."""
_UNKNOWN_COUNTS: dict[str, Any] = dict.fromkeys(_COUNTS)
# Response header in which a provider (or the mock) reports what it charged.
UPSTREAM_COST_HEADER = "x-upstream-cost-usd"


class Arrival(NamedTuple):
    """When a request arrived (its head), before its body was waited for and read: the record's clock starts here."""

    at: datetime
    clock: float
    """``time.perf_counter()`` then."""


@dataclass(slots=True)
class Exchange:
    """Observations, written while the request runs; :meth:`to_record` decides the outcome once."""

    context: RequestContext
    provider: Provider
    request_bytes: int = 0
    client_status: int = 0
    """The status the client is sent."""
    upstream_status: int | None = None
    failure: Failure | None = None
    upstream_sent_at: float | None = None
    handed_over_at: float | None = None
    """When the request went to the upstream client; unlike ``upstream_sent_at``, kept when it never connected."""
    upstream_headers_at: float | None = None
    upstream_done_at: float | None = None
    response_started_at: float | None = None
    first_byte_at: float | None = None
    first_token_at: float | None = None
    response_bytes: int = 0
    usage: Usage = field(default_factory=Usage)
    stream_state: StreamState | None = None
    """Set for server-sent-event answers: error event, terminal event, first token."""
    invalid_json: bool = False
    cut_mid_frame: bool = False
    """The compressed answer ended inside a zstd frame, which the SDKs refuse (its usage was still read)."""
    held_answer_bytes: int = 0
    """Bytes of a whole answer this exchange holds from the shared budget (``AnswerBudget``)."""
    accounting_lost: bool = False
    """The answer could not be read (undecodable, or larger decoded than allowed): its outcome
    beyond the status, and its usage, are unknown."""
    cost_sdk_usd: Decimal | None = None
    rate_limits: dict[str, float] = field(default_factory=dict)
    client_request_id: str | None = None
    upstream_request_id: str | None = None
    reader: str = "usage"
    """How the route's answer is read (``ProxyRoute.reader``): usage, free, batch_results, none, ..."""
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Response headers plugins asked for in ``admit_request``."""
    sent_headers: CIMultiDict[str] | None = None
    """The headers sent to the provider, held only in memory: if its error echoes a key, it is masked."""
    other_keys: tuple[str, ...] = ()
    """Keys the request concerns beyond its credential headers: the operator's configured ones (sent
    or not) and those in its query string; masked wherever a provider or a client may echo them."""
    client_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """The client's headers as they arrived, held only in memory: a request answered here (never sent)
    has the key they carry masked in its record."""
    body_read_at: float = field(default_factory=time.perf_counter)
    """When the request body had been read (the exchange starts then): ccproxy's own time counts from here."""

    def note_failure(self, error_type: str, message: str, status: int | None = None) -> None:
        """Note a failure of the transport or of ccproxy; the first one noted is the one kept."""
        if self.failure is None:
            self.failure = Failure(error_type, message, status)
            if status is not None:
                self.client_status = status

    def overhead_ms(self, now: float) -> float:
        """Time ccproxy spent on its own: before the upstream call, and after the provider's part ended
        (its whole answer read, or its head for a stream passed on as it comes)."""
        before = (self.handed_over_at or self.upstream_sent_at or now) - self.body_read_at
        done = self.upstream_done_at
        # A stream's end comes after its headers went out (``now`` then): its provider part ended at its head.
        provider_done = done if done is not None and done <= now else self.upstream_headers_at
        after = now - provider_done if provider_done is not None else 0.0
        return (before + after) * 1000.0

    def note_sdk_cost(self, value: str | None) -> None:
        if value:
            try:
                cost = Decimal(value)
            except InvalidOperation:
                return
            self.cost_sdk_usd = cost if cost.is_finite() else None

    def to_record(self, prices: PriceBook) -> AccessRecord:
        """The final record; call once, when nothing more will happen to this exchange."""
        ctx, usage, now = self.context, self.usage, time.perf_counter()
        if self.accounting_lost:  # only part of the answer was read: its counts are unknown, not what was seen
            usage = dataclasses.replace(usage, **_UNKNOWN_COUNTS)
        state = self.stream_state
        outcome = decide(
            Observed(
                client_status=self.client_status,
                upstream_status=self.upstream_status,
                usage=usage,
                failure=self.failure,
                streamed=state is not None,
                stream_error=state is not None and state.error_seen,
                # Whether an unread part held the end is unknown: no blame for a missing one.
                stream_terminated=state is not None and (state.terminal_seen or self.accounting_lost),
                stream_unreadable=state is not None and state.unreadable,
                invalid_json=self.invalid_json,
                cut_mid_frame=self.cut_mid_frame,
            )
        )
        duration = now - ctx.started_monotonic
        cost = self._cost(prices, outcome)
        start = ctx.started_monotonic
        return AccessRecord(
            request_id=ctx.request_id,
            timestamp=ctx.started_at,
            method=ctx.method,
            endpoint=ctx.endpoint,
            path=ctx.path,
            query=ctx.query,
            client_ip=ctx.client_ip,
            user_agent=ctx.user_agent,
            service_type=ctx.service_type,
            model=ctx.model,
            streaming=ctx.streaming or state is not None,
            status_code=outcome.status_code,
            duration_ms=duration * 1000.0,
            duration_seconds=duration,
            tokens_input=usage.input_tokens,
            tokens_output=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=cost.total,
            cost_sdk_usd=self.cost_sdk_usd,
            ttft_ms=_ms_between(start, self.first_token_at) if state is not None else None,
            upstream_status=self.upstream_status,
            # Not read to its end (a timeout, the client gone): the wait lasted until ccproxy stopped waiting.
            upstream_duration_ms=_ms_between(self.upstream_sent_at, self.upstream_done_at or now),
            proxy_overhead_ms=self.overhead_ms(self.response_started_at) if self.response_started_at else None,
            error_type=outcome.error_type,
            error_message=outcome.error_message,
            response_model=usage.response_model,
            cost_input_usd=cost.input,
            cost_output_usd=cost.output,
            cost_cache_read_usd=cost.cache_read,
            cost_cache_write_usd=cost.cache_write,
            priced=cost.priced,
            request_bytes=self.request_bytes,
            response_bytes=0 if self.context.method == "HEAD" else self.response_bytes,  # the server sends no body
            rate_limits=self.rate_limits,
            ttfb_ms=_ms_between(start, self.first_byte_at),
            client_request_id=self.client_request_id,
            upstream_request_id=self.upstream_request_id,
            reasoning_tokens=_part_of(usage.reasoning_tokens, usage.output_tokens),
            cache_write_1h_tokens=_part_of(usage.cache_write_1h_tokens, usage.cache_write_tokens),
            web_search_requests=usage.web_search_requests,
            service_tier=usage.service_tier,
            speed=usage.speed,
            cost_tools_usd=cost.tools,
            session_id=ctx.session_id,
            end_user=ctx.end_user,
            project=ctx.project,
            api_key_id=ctx.api_key_id,
            api_key_name=ctx.api_key_name,
            client_name=ctx.client_name,
            client_version=ctx.client_version,
            tags=ctx.tags,
            finish_reason=usage.finish_reason,
        )

    def _cost(self, prices: PriceBook, outcome: Outcome) -> Cost:
        usage = self.usage
        if self.upstream_sent_at is None:  # refused or cut before it was sent: the provider has nothing to bill
            return FREE
        if self.accounting_lost:  # only part of the answer was read: what it said is no bill
            return UNPRICED
        if self.reader == "free" and outcome.status_code < 400:
            return FREE
        if usage.batch is not None and usage.batch.results:
            return batch_cost(prices, self.provider, usage.batch, self._sent_keys)
        if self._stored_object_read(outcome):
            return FREE  # storing, listing, reading or deleting an object (a file, a batch) is not billed
        return prices.compute(
            self.provider, self.context.model, usage, served=usage.response_model, secrets=self._sent_keys
        )

    def _stored_object_read(self, outcome: Outcome) -> bool:
        """A management call or file download that went well and brought no usage (and no result went unread)."""
        usage = self.usage
        if self.reader not in STORED_OBJECT_READERS or outcome.error_type is not None:
            return False
        if usage.has_tokens or usage.counted_elsewhere:
            return False
        return usage.batch is None or not usage.batch.unreadable

    def _sent_keys(self) -> tuple[str, ...]:
        """Every key the request concerns (asked only to keep them out of a log line)."""
        return (credential_values(self.sent_headers) if self.sent_headers else ()) + self.other_keys


STORED_OBJECT_READERS = frozenset({"none", "batch_results", STORED_RESPONSE})
"""Readers of management calls, file downloads and stored responses: no charge unless their answer
brings usage (batch results, a background response shown finished)."""
FREE = Cost(Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0), priced=True, tools=Decimal(0))
"""The cost of what the provider does not charge for: free endpoints (moderations, token counting,
listing models) and reads of objects stored earlier."""


def _part_of(part: int | None, whole: int | None) -> int | None:
    """A count the answer gives as part of another, never more than that one in the record: the price
    counts no more of it either (an answer that says so contradicts itself)."""
    return min(part, whole) if part is not None and whole is not None else part


def _ms_between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000.0
