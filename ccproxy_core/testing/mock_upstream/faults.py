"""Per-request behaviour asked for by ``x-mock-*`` request headers, checked and turned into a plan."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any

from ccproxy_core.testing.mock_upstream.options import (
    MAX_DELTA_COUNT,
    MockOptions,
    check_delta_count,
    check_milliseconds,
)

MOCK_HEADER_PREFIX = "x-mock-"
COST_RESPONSE_HEADER = "x-upstream-cost-usd"
"""Response header carrying the cost the "provider" reports, when ``x-mock-cost-usd`` asks for one."""

_ERROR_TYPE = re.compile(r"[a-z][a-z0-9_]{0,63}")


class BadMockHeader(ValueError):
    """An ``x-mock-*`` header has a value the mock cannot use; the message names the header."""


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Everything that shapes one answer besides the request body."""

    latency_ms: int
    delta_count: int
    delta_interval_ms: int
    status: int | None = None
    """Answer with this error status instead of a completion (``x-mock-status``)."""
    retry_after: str | None = None
    error_type: str | None = None
    """Overrides the provider error type of an injected error (``x-mock-error-type``)."""
    abort_after: int | None = None
    """Cut the connection after this many deltas (``x-mock-abort-after``)."""
    stream_error_after: int | None = None
    """Send a provider error event after this many deltas (``x-mock-stream-error-after``)."""
    malformed: bool = False
    slow_bytes_ms: int = 0
    cost_usd: str | None = None
    truncate_after: int | None = None
    """End the stream cleanly after this many deltas, without its terminal event (``x-mock-truncate-after``)."""
    content_encoding: str | None = None
    """Compress the answer so, whatever the request accepted (``x-mock-content-encoding``)."""
    first_token_ms: int = 0
    """Pause between a stream's opening events and its first content delta (``x-mock-first-token-ms``)."""
    input_tokens: int | None = None
    """Report this many prompt tokens instead of counting them (``x-mock-input-tokens``)."""
    web_searches: int | None = None
    """Report this many server-side web searches (Anthropic ``x-mock-web-searches``)."""
    service_tier: str | None = None
    """The service tier the answer reports (``x-mock-service-tier``)."""
    speed: str | None = None
    """Anthropic's ``usage.speed`` (``x-mock-speed: fast``)."""
    reasoning_tokens: int | None = None
    """Of the output tokens, this many reported as reasoning (OpenAI ``x-mock-reasoning-tokens``)."""

    @property
    def plain(self) -> bool:
        """True when the body can go out in one piece (no pacing, cut or slow bytes)."""
        return (
            self.abort_after is None
            and not self.slow_bytes_ms
            and not self.delta_interval_ms
            and self.truncate_after is None
            and not self.first_token_ms
        )


def default_plan(options: MockOptions) -> RequestPlan:
    """The plan for a request without ``x-mock-*`` headers."""
    return RequestPlan(options.latency_ms, options.delta_count, options.delta_interval_ms)


def plan_request(headers: Mapping[str, str], default: RequestPlan) -> RequestPlan:
    """Apply the request's ``x-mock-*`` headers to ``default``; raise BadMockHeader for a bad one."""
    asked = {name.lower(): value for name, value in headers.items() if name[:7].lower() == MOCK_HEADER_PREFIX}
    if not asked:
        return default
    changes: dict[str, Any] = {}
    for name, value in asked.items():
        reader = _HEADER_READERS.get(name)
        if reader is None:
            known = ", ".join(sorted(_HEADER_READERS))
            raise BadMockHeader(f"unknown mock header {name}; known headers: {known}")
        field, parse = reader
        try:
            changes[field] = parse(value.strip())
        except ValueError as error:
            raise BadMockHeader(f"{name}: {error}") from None
    return replace(default, **changes)


def _milliseconds(value: str) -> int:
    return check_milliseconds("the value", _integer(value))


def _delta_count(value: str) -> int:
    return check_delta_count("the value", _integer(value))


def _delta_index(value: str) -> int:
    number = _integer(value)
    if not 0 <= number <= MAX_DELTA_COUNT:
        raise ValueError(f"must be an integer from 0 to {MAX_DELTA_COUNT}, got {value!r}")
    return number


def _status(value: str) -> int:
    number = _integer(value)
    if not 400 <= number <= 599:
        raise ValueError(f"must be an error status from 400 to 599, got {value!r}")
    return number


def _seconds(value: str) -> str:
    number = _decimal(value)
    return str(int(number)) if number == number.to_integral_value() else str(number)


def _cost(value: str) -> str:
    return str(_decimal(value))


def _error_type(value: str) -> str:
    if not _ERROR_TYPE.fullmatch(value):
        raise ValueError(f"must be a lower-case identifier such as rate_limit_error, got {value!r}")
    return value


def _encoding(value: str) -> str:
    from ccproxy_core.testing.mock_upstream.compression import ENCODINGS

    if value not in ENCODINGS:
        raise ValueError(f"must be one of {', '.join(ENCODINGS)}, got {value!r}")
    return value


def _label(value: str) -> str:
    if not _ERROR_TYPE.fullmatch(value):
        raise ValueError(f"must be a lower-case word such as priority, got {value!r}")
    return value


def _count(value: str) -> int:
    number = _integer(value)
    if number > 10_000_000:
        raise ValueError(f"must be at most 10000000, got {value!r}")
    return number


def _flag(value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"must be 1 or 0, got {value!r}")


def _integer(value: str) -> int:
    if not value.isascii() or not value.isdigit():
        raise ValueError(f"must be a whole number, got {value!r}")
    return int(value)


def _decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"must be a decimal number such as 0.0125, got {value!r}") from None
    if not number.is_finite() or number < 0:
        raise ValueError(f"must be a finite number >= 0, got {value!r}")
    return number


_HEADER_READERS = {
    "x-mock-latency-ms": ("latency_ms", _milliseconds),
    "x-mock-delta-count": ("delta_count", _delta_count),
    "x-mock-delta-interval-ms": ("delta_interval_ms", _milliseconds),
    "x-mock-status": ("status", _status),
    "x-mock-retry-after": ("retry_after", _seconds),
    "x-mock-error-type": ("error_type", _error_type),
    "x-mock-abort-after": ("abort_after", _delta_index),
    "x-mock-stream-error-after": ("stream_error_after", _delta_index),
    "x-mock-malformed": ("malformed", _flag),
    "x-mock-slow-bytes-ms": ("slow_bytes_ms", _milliseconds),
    "x-mock-cost-usd": ("cost_usd", _cost),
    "x-mock-truncate-after": ("truncate_after", _delta_index),
    "x-mock-content-encoding": ("content_encoding", _encoding),
    "x-mock-first-token-ms": ("first_token_ms", _milliseconds),
    "x-mock-input-tokens": ("input_tokens", _count),
    "x-mock-web-searches": ("web_searches", _count),
    "x-mock-service-tier": ("service_tier", _label),
    "x-mock-speed": ("speed", _label),
    "x-mock-reasoning-tokens": ("reasoning_tokens", _count),
}
