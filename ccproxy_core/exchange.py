"""One request/response exchange in flight: its timings, outcome, and final record."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ccproxy_core.cost import PriceBook
from ccproxy_core.record import AccessRecord, RequestContext
from ccproxy_core.usage import Usage

# Response header in which a provider (or the mock) reports what it charged.
UPSTREAM_COST_HEADER = "x-upstream-cost-usd"


@dataclass(slots=True)
class Exchange:
    """Mutable while the request runs; :meth:`to_record` freezes it into the access record."""

    context: RequestContext
    request_bytes: int = 0
    status_code: int = 0
    upstream_status: int | None = None
    upstream_sent_at: float | None = None
    upstream_headers_at: float | None = None
    upstream_done_at: float | None = None
    response_started_at: float | None = None
    first_byte_at: float | None = None
    response_bytes: int = 0
    usage: Usage = field(default_factory=Usage)
    error_type: str | None = None
    error_message: str | None = None
    cost_sdk_usd: Decimal | None = None
    rate_limits: dict[str, float] = field(default_factory=dict)
    extra_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Response headers plugins asked for in ``admit_request``."""

    def fail(self, status_code: int, error_type: str, message: str) -> None:
        """Note a failure; the first error type noted is kept, the status is the latest."""
        self.status_code = status_code
        if self.error_type is None:
            self.error_type, self.error_message = error_type, message

    def overhead_ms(self, now: float) -> float:
        """Time ccproxy spent on its own, before the upstream call and after its answer arrived."""
        start = self.context.started_monotonic
        before = (self.upstream_sent_at or now) - start
        after = now - self.upstream_headers_at if self.upstream_headers_at is not None else 0.0
        return (before + after) * 1000.0

    def note_sdk_cost(self, value: str | None) -> None:
        if value:
            try:
                self.cost_sdk_usd = Decimal(value)
            except InvalidOperation:
                self.cost_sdk_usd = None

    def to_record(self, prices: PriceBook) -> AccessRecord:
        """The final record; call once, when nothing more will happen to this exchange."""
        ctx, usage, now = self.context, self.usage, time.perf_counter()
        duration = now - ctx.started_monotonic
        if usage.error_type and self.error_type is None and self.status_code >= 400:
            self.error_type, self.error_message = usage.error_type, usage.error_message
        cost = prices.compute(ctx.service_type, ctx.model or usage.response_model, usage)
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
            streaming=ctx.streaming,
            status_code=self.status_code,
            duration_ms=duration * 1000.0,
            duration_seconds=duration,
            tokens_input=usage.input_tokens,
            tokens_output=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            cost_usd=cost.total,
            cost_sdk_usd=self.cost_sdk_usd,
            ttft_ms=_ms_since(ctx.started_monotonic, self.first_byte_at) if ctx.streaming else None,
            upstream_status=self.upstream_status,
            upstream_duration_ms=_ms_between(self.upstream_sent_at, self.upstream_done_at),
            proxy_overhead_ms=self.overhead_ms(self.response_started_at) if self.response_started_at else None,
            error_type=self.error_type,
            error_message=self.error_message,
            response_model=usage.response_model,
            cost_input_usd=cost.input,
            cost_output_usd=cost.output,
            cost_cache_read_usd=cost.cache_read,
            cost_cache_write_usd=cost.cache_write,
            priced=cost.priced,
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes,
            rate_limits=self.rate_limits,
        )


def _ms_since(start: float, end: float | None) -> float | None:
    return None if end is None else (end - start) * 1000.0


def _ms_between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else (end - start) * 1000.0
