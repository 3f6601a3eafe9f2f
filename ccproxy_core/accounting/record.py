"""What ccproxy knows about one proxied request: its context while it runs, its record when done."""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NoReturn, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class ReadOnlyDict(dict[K, V]):
    """A dict no one can change: what every plugin sees of a record's ``tags`` and ``rate_limits``.

    A ``dict`` still, so JSON encoders (json's C encoder, orjson) and stores serialise it as
    they did; copying it once per record costs less than giving each plugin a copy of its own.
    """

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("a record's tags and rate_limits are read-only; copy them with dict(...) to change them")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))

    def __reduce__(self) -> tuple[type, tuple[dict[K, V]]]:
        return type(self), (dict(self),)

    def __copy__(self) -> ReadOnlyDict[K, V]:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ReadOnlyDict[K, V]:
        return self


_NO_ENTRIES: ReadOnlyDict[Any, Any] = ReadOnlyDict()


def read_only(values: Mapping[K, V]) -> ReadOnlyDict[K, V]:
    """``values`` as a ``ReadOnlyDict`` (itself when it is one already)."""
    if type(values) is ReadOnlyDict:
        return values
    return ReadOnlyDict(values) if values else _NO_ENTRIES


@dataclass(slots=True)
class RequestContext:
    """One proxied request as seen when it arrives; handed to both request hooks.

    Plugins read it and must not change it. ``state`` is the one place a plugin may
    keep per-request data of its own between ``on_request_start`` and
    ``on_request_end`` (use a key named after your plugin).
    """

    request_id: str
    method: str
    path: str
    endpoint: str
    """The route template that matched (``/v1/messages``), never the raw path."""
    query: str
    client_ip: str | None
    user_agent: str | None
    service_type: str
    """Which provider serves the request: ``anthropic`` or ``openai``."""
    model: str | None
    """The model the client asked for; ``None`` when the body has none or is not JSON."""
    streaming: bool
    started_at: datetime
    """Wall-clock start, timezone-aware UTC."""
    started_monotonic: float
    """``time.perf_counter()`` at start, for durations."""
    state: dict[str, Any] = field(default_factory=dict)
    session_id: str | None = None
    """Who and what the request is for (see :mod:`ccproxy_core.accounting.attribution`); known before forwarding."""
    end_user: str | None = None
    project: str | None = None
    api_key_id: str | None = None
    """A 12-hex-digit fingerprint of the client's key, never the key."""
    api_key_name: str | None = None
    """The operator's name for ``api_key_id`` (``[attribution.keys]``)."""
    client_name: str | None = None
    client_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    traceparent: str | None = None
    """The client's W3C ``traceparent`` header, as sent (unchecked), so a tracing plugin can continue its trace."""
    tracestate: str | None = None
    """The client's W3C ``tracestate`` header, as sent (unchecked)."""
    client_request_id: str | None = None
    """The client's own ``x-request-id``, if it sent one (capped); the record's ``client_request_id``."""


@dataclass(frozen=True, slots=True)
class AccessRecord:
    """The final, immutable record of one proxied request.

    The first twenty fields are the documented ``access_logs`` columns, under those
    names. No secret (API key, Authorization, cookie) is ever put in a record.
    """

    request_id: str
    timestamp: datetime
    """When the request arrived (UTC)."""
    method: str
    endpoint: str
    path: str
    query: str
    client_ip: str | None
    user_agent: str | None
    service_type: str
    model: str | None
    streaming: bool
    status_code: int
    """The status the client received."""
    duration_ms: float
    duration_seconds: float
    tokens_input: int | None
    """Input tokens not read from or written to the cache (Anthropic's convention)."""
    tokens_output: int | None
    cache_read_tokens: int | None
    cache_write_tokens: int | None
    cost_usd: Decimal | None
    """Total cost from genai-prices; ``None`` when the model has no known price."""
    cost_sdk_usd: Decimal | None
    """The cost the upstream itself reported, when it reports one."""

    ttft_ms: float | None = None
    """Time to first token, for streams: from arrival to the first content token (text,
    thinking or tool input) the provider sent; ``None`` when none came."""
    upstream_status: int | None = None
    """The status the provider answered with; ``None`` if it never answered."""
    upstream_duration_ms: float | None = None
    """Time spent waiting on the provider, from sending the request to its last byte."""
    proxy_overhead_ms: float | None = None
    """Time ccproxy itself added before the response headers went out."""
    error_type: str | None = None
    error_message: str | None = None
    response_model: str | None = None
    """The model the provider says it used, when it says."""
    cost_input_usd: Decimal | None = None
    cost_output_usd: Decimal | None = None
    cost_cache_read_usd: Decimal | None = None
    cost_cache_write_usd: Decimal | None = None
    priced: bool = False
    """True when genai-prices knew the model, so the cost fields are meaningful."""
    request_bytes: int = 0
    response_bytes: int = 0
    rate_limits: Mapping[str, float] = _NO_ENTRIES
    """Provider rate-limit headroom from response headers, e.g. ``{"requests_remaining": 49.0}`` (read-only)."""
    ttfb_ms: float | None = None
    """Time to first byte: from arrival to the first byte of the provider's answer body."""
    client_request_id: str | None = None
    """The ``x-request-id`` the client sent, if any (``request_id`` is always ccproxy's own)."""
    upstream_request_id: str | None = None
    """The provider's id of the request (Anthropic ``request-id``, OpenAI ``x-request-id``)."""
    reasoning_tokens: int | None = None
    """Of ``tokens_output``, those spent reasoning, when the provider says (billed as output)."""
    cache_write_1h_tokens: int | None = None
    """Of ``cache_write_tokens``, those written with the one-hour lifetime (billed higher)."""
    web_search_requests: int | None = None
    """Server-side web searches the provider ran and bills per search."""
    service_tier: str | None = None
    """The tier the provider served the answer at (OpenAI ``priority``/``flex``, Anthropic ``standard``/``batch``)."""
    speed: str | None = None
    """Anthropic's speed mode (``fast``), priced at its own rates."""
    cost_tools_usd: Decimal | None = None
    """The part of ``cost_usd`` billed per use of a server tool (web searches, file searches)."""
    session_id: str | None = None
    """The client's session (Claude Code's session id, Codex CLI's, or ``x-ccproxy-session``)."""
    end_user: str | None = None
    """The end user the client named (Claude Code account, OpenAI ``user``/``safety_identifier``)."""
    project: str | None = None
    """``x-ccproxy-project``, else the project configured for the key."""
    api_key_id: str | None = None
    """A 12-hex-digit keyed fingerprint of the client's API key; the key itself is never kept."""
    api_key_name: str | None = None
    """The operator's name for that fingerprint, from ``[attribution.keys]``."""
    client_name: str | None = None
    """The client program, from the User-Agent (``claude-code``, ``codex``, ``anthropic-python``, ...)."""
    client_version: str | None = None
    tags: Mapping[str, str] = _NO_ENTRIES
    """Free labels from ``x-ccproxy-tag-<name>`` headers (read-only)."""
    finish_reason: str | None = None
    """Why the answer ended, in the provider's words (``end_turn``, ``max_tokens``, ``tool_use``,
    ``stop``, ``length``, ``tool_calls``, ``content_filter``, ...); ``None`` when it did not say."""

    def __post_init__(self) -> None:
        # Shared with the request's context and with every plugin: no one may change what the others see.
        if type(self.tags) is not ReadOnlyDict:
            object.__setattr__(self, "tags", read_only(self.tags))
        if type(self.rate_limits) is not ReadOnlyDict:
            object.__setattr__(self, "rate_limits", read_only(self.rate_limits))

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values: ISO timestamps, money as floats."""
        values = dict(zip(ACCESS_LOG_COLUMNS, _every_field(self), strict=True))
        for name in _CONVERTED_FIELDS:
            value = values[name]
            if value is not None:
                values[name] = _jsonable(value)
        return values


ACCESS_LOG_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(AccessRecord))
_every_field = operator.attrgetter(*ACCESS_LOG_COLUMNS)
# Read once from the declared types (``to_dict`` runs for every record on several paths).
_CONVERTED_FIELDS = tuple(
    f.name for f in dataclasses.fields(AccessRecord) if "Decimal" in str(f.type) or "datetime" in str(f.type)
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
