"""What every provider module defines, and the readers they share.

A provider module (``anthropic.py``, ``openai.py``) builds one :class:`Provider`: its
routes, base URL and key header, error body shape and local error types, the usage and
error reader for a whole JSON body, the reader for its server-sent-event stream (usage,
errors, first content token, terminal event), its rate-limit and request-id headers and
its genai-prices provider id. The core asks the provider and never names one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.usage import Usage
from ccproxy_core.json_text import decode_json, too_costly_to_decode
from ccproxy_core.safe_values import MAX_TOKEN_COUNT, safe_text

_MAX_ERROR_TYPE_CHARS = 64
_MAX_ERROR_MESSAGE_CHARS = 1000
_MAX_LABEL_CHARS = 32
# Providers echo a (partly masked) key in some auth errors; records never hold keys.


@dataclass(frozen=True, slots=True)
class ProxyRoute:
    """One proxied endpoint: its template, its method, and its provider (``None``: decided per request).

    ``reader`` says how its answer is read: ``usage`` (a metered call, the provider's
    usual readers), a key of the provider's ``route_readers`` (another answer shape, such
    as OpenAI's Responses API), ``batch_results`` (JSON Lines of finished batch requests,
    priced at the batch rate), ``free`` (metered at no charge) or ``none`` (management
    calls: a stored object may repeat the usage of the call that made it, which must not
    be counted twice).
    """

    template: str
    method: str
    service_type: str | None
    reader: str = "usage"


def routes(service_type: str | None, reader: str, *specs: str) -> tuple[ProxyRoute, ...]:
    """Routes from ``"POST /v1/messages"`` specs, all of one provider and reader."""
    return tuple(ProxyRoute(spec.split(" ", 1)[1], spec.split(" ", 1)[0], service_type, reader) for spec in specs)


@dataclass(slots=True)
class StreamState:
    """What a stream has shown so far besides usage (kept by the stream reader)."""

    terminal_seen: bool = False
    """The provider's end-of-answer event arrived (Anthropic ``message_stop``, OpenAI ``[DONE]``)."""
    first_token_seen: bool = False
    """A content token (text, thinking or tool input) arrived; the reader sets it once."""
    error_seen: bool = False
    """An in-stream error event arrived."""
    unreadable: bool = False
    """The stream carried bytes that are not UTF-8, or an event of interest that is not JSON:
    clients fail on it, and what it said about usage is lost."""
    skipped: bool = False
    """An event of interest was too costly to decode (see ``json_text.too_costly_to_decode``): passed
    on unread, so what the stream said about usage is not known."""
    ended: bool = False
    """The message's last event was read (Anthropic ``message_stop``): after it, only what the SDKs raise on
    is read (an ``error`` event, an event they cannot decode), as they read on to the stream's end (a usage
    event there counts nothing)."""
    over: bool = False
    """The stream's last word was read (Anthropic ``message_stop``, OpenAI ``[DONE]``, a Responses answer's
    end, or an error the SDKs raise on): what a provider sends after it is no part of the answer, and is
    not read (a usage event there would count tokens no client saw)."""


class StreamReader:
    """Reads the complete lines of one stream into a ``Usage`` and a ``StreamState``.

    Subclassed per provider. ``read_block`` gets every block of complete lines, in order,
    and must stay cheap: it may search bytes freely but should JSON-decode only the
    events that can carry usage, the model or an error, never every content delta.
    """

    __slots__ = ()

    skipped_names: frozenset[bytes | None] = frozenset()
    """Names of the events whose data the provider's SDKs never decode as JSON (``None``: unnamed ones)."""
    sdk_skips_empty_data = False
    """Whether the SDKs skip an event whose data is empty (Anthropic's), rather than fail to decode it (OpenAI's)."""
    sdk_stops_at_done = True
    """Whether the SDKs stop at an event whose data is ``[DONE]`` (OpenAI's); Anthropic's decode it as any other."""

    def read_block(self, usage: Usage, state: StreamState, block: bytes) -> None:
        """Read one block of complete lines (the base reader reads nothing)."""

    def read_end(self, usage: Usage, state: StreamState) -> None:
        """Settle what the stream never said, as it ends here (whole or cut short): the base reader has nothing."""


@dataclass(frozen=True, slots=True)
class Provider:
    """Everything ccproxy knows about one provider's API."""

    name: str
    """The ``service_type`` of its records (``anthropic``, ``openai``)."""
    price_id: str
    """Its provider id in genai-prices."""
    default_base_url: str
    key_header: str
    """The request header carrying the API key (``x-api-key``, ``authorization``)."""
    key_value: Callable[[str], str]
    """Turns a configured API key into that header's value."""
    request_id_header: str
    """The response header in which the provider names the request (support tickets quote it)."""
    routes: tuple[ProxyRoute, ...]
    local_error_types: Mapping[int, str]
    """The provider's own error type for each status ccproxy answers with itself."""
    error_body: Callable[[str, str, str | None], bytes]
    """``error_body(error_type, message, request_id)``: an error shaped like the provider's own (``request_id``,
    ccproxy's id of the request, where the provider's own errors name theirs)."""
    read_payload: Callable[[Usage, dict[str, Any]], None]
    """Reads a whole JSON response body into a ``Usage``."""
    stream_reader: Callable[[], StreamReader]
    price_context: Callable[[Usage], dict[str, str]]
    """The genai-prices price context (service tier, batch processing) the answer asks for."""
    price_calendar: str | None = None
    """The time zone whose calendar dates its price changes (OpenAI: US Pacific); ``None`` for UTC's."""
    list_price_tiers: frozenset[str] = frozenset()
    """Service tiers it bills at its list price or at a price the price context selects itself; an
    answer served at any other tier is priced only where a price list names that tier."""
    tool_use_prices: Mapping[str, Decimal] = field(default_factory=dict)
    """USD per thousand uses of a server tool that the provider publishes for every model, under genai-prices'
    keys (``web_searches_kcount``, ``storage_searches_kcount``): the price of a model whose price list has none."""
    price_multiplier: Callable[[Usage], Decimal | None] = lambda usage: None
    """A factor on every token price that the answer asks for (Anthropic's US-only inference), if any."""
    regional_uplift: Callable[[str], Decimal | None] = lambda model: None
    """On the provider's regional processing hosts (data residency), the factor on every token price of a
    model (1 for none), or ``None`` when it is not known: the answer is then unpriced."""
    error_envelope: Callable[[dict[str, Any]], bool] = lambda payload: False
    """Whether a whole JSON body is the provider's error body in place of an answer (sent even with status 200)."""
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)
    """Response header name (lower case) -> record key in ``rate_limits``."""
    claims_request: Callable[[Mapping[str, str]], bool] = lambda headers: False
    """For routes both providers serve (``/v1/models``): whether a request's headers are this provider's."""
    prepare_body: Callable[[str, bytes | bytearray, bool], bytes | bytearray] | None = None
    """Optional change to a request body: ``prepare_body(endpoint, body, opted_in)`` (see OpenAI's)."""
    route_readers: Mapping[str, tuple[Callable[[Usage, dict[str, Any]], None], Callable[[], StreamReader]]] = field(
        default_factory=dict
    )
    """Body and stream readers of routes whose answers have another shape, by ``ProxyRoute.reader``."""
    wire_names: tuple[Mapping[bytes, str], bytes] = field(init=False, repr=False, compare=False)
    """``rate_limit_headers`` and ``request_id_header`` as bytes, as answers' header names come."""

    def __post_init__(self) -> None:
        limits = {name.encode("latin-1"): key for name, key in self.rate_limit_headers.items()}
        object.__setattr__(self, "wire_names", (limits, self.request_id_header.encode("latin-1")))

    def local_error_type(self, status: int) -> str:
        """The provider's error type for a status ccproxy answers with itself."""
        return self.local_error_types.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


# --- Readers shared by the providers ---------------------------------------------------


MAX_MODEL_CHARS_READ = 1024
"""A model name the provider sends is cut to this length before it is priced or logged (the record keeps
fewer still, SERVER__MAX_MODEL_CHARS): looking up a name of millions of characters takes a second."""


def read_model(usage: Usage, model: Any) -> None:
    if isinstance(model, str) and model:
        usage.response_model = model[:MAX_MODEL_CHARS_READ]


def read_error(usage: Usage, error: Any, prefer_code: bool = False) -> None:
    """An error object: Anthropic's ``{"type", "message"}`` or OpenAI's ``{"type", "code", "message"}``.

    With ``prefer_code`` (OpenAI) a string ``code`` is the type: ``rate_limit_exceeded``
    says more than the type ``requests``. A bare string (``{"error": "Internal error"}``, as some
    gateways send) is the message, with no type.
    """
    if isinstance(error, str) and error:
        usage.error_message = clean_text(error, _MAX_ERROR_MESSAGE_CHARS)
        return
    if not isinstance(error, dict) or not error:  # ``{"error": {}}`` is no error to the SDKs either
        return
    kinds = (error.get("code"), error.get("type")) if prefer_code else (error.get("type"), error.get("code"))
    kind = next((k for k in kinds if isinstance(k, str) and k), None)
    usage.error_type = clean_text(kind, _MAX_ERROR_TYPE_CHARS) if kind else "unknown_error"
    message = error.get("message")
    if isinstance(message, str):
        usage.error_message = clean_text(message, _MAX_ERROR_MESSAGE_CHARS)


def read_label(value: Any) -> str | None:
    """A short provider label (service tier, speed), bounded; ``None`` when absent."""
    if isinstance(value, str) and value:
        return clean_text(value, _MAX_LABEL_CHARS)
    return None


def clean_text(value: str, limit: int) -> str:
    """``value`` as printable text of at most ``limit`` characters: control and format characters as visible
    escapes (``\\n``, ``\\x1b``), a cut shown by an ellipsis (:func:`~ccproxy_core.safe_values.safe_text`)."""
    return safe_text(value, limit)


def token_count(value: Any) -> int | None:
    """A count as the provider sent it, when it is one (see :data:`MAX_TOKEN_COUNT`), else ``None``."""
    # bool is an int subclass; a negative count is nonsense that would break pricing.
    if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT:
        return value
    # JSON does not tell 1200 from 1200.0 or 1.2e3: the SDKs read them all as the count 1200.
    if type(value) is float and value.is_integer() and 0 <= value <= MAX_TOKEN_COUNT:
        return int(value)
    return None


def billed_count(usage: Usage, value: Any) -> int | None:
    """A count the bill depends on: one that is there but not a whole number >= 0 leaves the cost unknown."""
    count = token_count(value)
    if count is None and value is not None:
        usage.bad_counts = True
    return count


def decode_event(usage: Usage, state: StreamState, data: bytes) -> Any:
    """An event of interest, decoded; one that does not decode makes the stream unreadable and its cost unknown."""
    if too_costly_to_decode(data):
        state.skipped = True
        return None
    event = decode_json(data)
    if event is None and data.strip() not in (b"", b"[DONE]", b"null"):  # JSON's null decodes, to None
        state.unreadable = usage.bad_counts = True
    return event


def spells_with_escapes(data: bytes) -> bool:
    """Whether ``data`` holds a JSON escape of a Latin letter (``\\u0065rror``): a key the SDKs read
    after decoding, which a byte search for it misses. Providers write keys plainly; data that does
    not is decoded rather than searched."""
    return b"\\u00" in data
