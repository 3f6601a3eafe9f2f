"""Which upstream response headers go back to the client, and what ccproxy reads from them."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

from ccproxy_core.key_masking import ELLIPSIS
from ccproxy_core.providers import Provider
from ccproxy_core.safe_values import number_from_header

if TYPE_CHECKING:
    from ccproxy_core.forwarding.exchange import Exchange

CCPROXY_REQUEST_ID_HEADER = b"x-ccproxy-request-id"
"""ccproxy's own id of a request (the record's ``request_id``); providers' ids pass unchanged."""

_MAX_ID_CHARS = 200
# Bytes an HTTP/1.1 header value may not hold (tab is allowed), which the server refuses to send.
_UNSENDABLE_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""The bytes a header name is made of (RFC 9110, 5.1: a name is a token); deleting them leaves nothing of a valid
one, at a quarter of a regular expression's cost."""

# Hop-by-hop, or set by our own server for this connection.
_NOT_RETURNED = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"content-length", b"date", b"server", b"upgrade", b"trailer"}
)
_CONNECTION_OPTIONS = _NOT_RETURNED | {b"close"}
"""What a provider's ``Connection`` usually says: nothing more to leave out."""


def returned_headers(upstream: Iterable[tuple[bytes, bytes]], request_id: str) -> list[tuple[bytes, bytes]]:
    """Upstream headers for the client, byte for byte (``x-request-id`` and ``content-encoding``
    included), plus ``x-ccproxy-request-id``; an ``x-ccproxy-*`` header of the provider's is left out,
    and so are hop-by-hop ones: HTTP's own and those the provider's ``Connection`` names.

    A header whose value holds a control character, or whose name is not a token (which HTTP forbids, and the
    server would refuse, failing the whole answer), is left out; the rest of the answer goes through.
    """
    out = [(CCPROXY_REQUEST_ID_HEADER, request_id.encode())]
    nominated: set[bytes] = set()
    for name, value in upstream:
        lower = name.lower()
        if lower == b"connection":
            if value.lower() not in _CONNECTION_OPTIONS:  # the usual keep-alive or close: nothing to split
                nominated.update(option.strip().lower() for option in value.split(b","))
        elif lower not in _NOT_RETURNED and not lower.startswith(b"x-ccproxy-"):  # ccproxy's own names
            out.append((lower, value))
    if not nominated <= _CONNECTION_OPTIONS:  # hop-by-hop by the provider's word (``Connection: x-foo``): not passed on
        out = [(name, value) for name, value in out if name not in nominated or name == CCPROXY_REQUEST_ID_HEADER]
    # One search over every value (a tab never matches): a search per header costs twice as much.
    if _UNSENDABLE_VALUE.search(b"\t".join([value for _, value in out])):
        out = [(name, value) for name, value in out if not _UNSENDABLE_VALUE.search(value)]
    # aiohttp takes a name with a space before its colon ("Connection :"), which the server refuses to send.
    if b"".join([name for name, _ in out]).translate(None, _TOKEN_BYTES):
        out = [(name, value) for name, value in out if name and not name.translate(None, _TOKEN_BYTES)]
    return out


def read_response_headers(
    provider: Provider, upstream: Iterable[tuple[bytes, bytes]]
) -> tuple[dict[str, float], str | None]:
    """Rate-limit headroom keyed ``<resource>_<limit|remaining>``, and the provider's request id.

    ``anthropic-ratelimit-input-tokens-remaining: 9000`` -> ``{"input_tokens_remaining": 9000.0}``;
    ``x-ratelimit-limit-requests: 500`` -> ``{"requests_limit": 500.0}``.
    """
    limits: dict[str, float] = {}
    request_id = None
    keys, id_header = provider.wire_names
    for raw_name, raw_value in upstream:
        name = raw_name.lower()  # the names looked for are ASCII, and no other byte lowers to one
        key = keys.get(name)
        if key is not None:
            number = number_from_header(raw_value)
            if number is None and key == "retry_after_seconds":
                number = seconds_until(raw_value)
            if number is not None:
                limits[key] = number
        elif name == id_header:
            request_id = header_text(raw_value, _MAX_ID_CHARS + 1)
            if len(request_id) > _MAX_ID_CHARS:  # the cut shown, so a key it cut short is still masked
                request_id = request_id[: _MAX_ID_CHARS - 1] + ELLIPSIS
    return limits, request_id


def id_of_local_error(own_id: str, exchange: Exchange) -> bytes | None:
    """The provider's request-id header of an error ccproxy answers: ccproxy's own id when no provider saw
    the request (SDKs show that header with the error), the provider's when it answered with one."""
    if exchange.upstream_sent_at is None:
        return own_id.encode()
    known = exchange.upstream_request_id
    return known.encode() if known and known.isascii() and known.isprintable() else None


def seconds_until(http_date: bytes) -> float | None:
    """Seconds from now to a ``Retry-After`` given as an HTTP date (0 once past), ``None`` if it is not one."""
    try:
        moment = parsedate_to_datetime(http_date.decode("latin-1"))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, says RFC 5322
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, round(moment.timestamp() - time.time(), 3))


def header_text(value: bytes, limit: int = _MAX_ID_CHARS) -> str:
    """A header value as text: UTF-8 as clients send it (not latin-1 mojibake), capped.

    Control characters are left for ``safe_values`` to escape where the record is made safe.
    """
    return value.decode("utf-8", errors="replace")[:limit]
