"""Server-wide options of the mock upstream (CLI flags), and their per-request overrides."""

from __future__ import annotations

from dataclasses import dataclass

MAX_MILLISECONDS = 600_000
"""Longest pause a flag or header may ask for (ten minutes)."""
MAX_DELTA_COUNT = 100_000
"""Most text deltas one answer may have."""


@dataclass(frozen=True, slots=True)
class MockOptions:
    """How the mock upstream answers when a request carries no ``x-mock-*`` header.

    Each field can be overridden for one request by the header named in its docstring.
    """

    latency_ms: int = 0
    """Pause before the response headers (``x-mock-latency-ms``)."""
    delta_count: int = 20
    """Text deltas in a stream; also sets the length of a non-streamed answer (``x-mock-delta-count``)."""
    delta_interval_ms: int = 0
    """Pause before each text delta of a stream (``x-mock-delta-interval-ms``)."""
    recorded_requests_limit: int = 200
    """How many received requests ``GET /_mock/requests`` keeps (oldest dropped first); 0 keeps none."""

    def __post_init__(self) -> None:
        check_milliseconds("latency_ms", self.latency_ms)
        check_milliseconds("delta_interval_ms", self.delta_interval_ms)
        check_delta_count("delta_count", self.delta_count)
        if not isinstance(self.recorded_requests_limit, int) or self.recorded_requests_limit < 0:
            raise ValueError(f"recorded_requests_limit must be an integer >= 0, got {self.recorded_requests_limit!r}")


def check_milliseconds(name: str, value: object) -> int:
    """Return ``value`` if it is a whole number of milliseconds in range, else raise ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_MILLISECONDS:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_MILLISECONDS}, got {value!r}")
    return value


def check_delta_count(name: str, value: object) -> int:
    """Return ``value`` if it is an allowed number of deltas, else raise ValueError naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DELTA_COUNT:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_DELTA_COUNT}, got {value!r}")
    return value
