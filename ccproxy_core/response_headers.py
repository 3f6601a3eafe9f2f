"""Which upstream response headers go back to the client, and what they say about rate limits."""

from __future__ import annotations

from collections.abc import Iterable

_RESOURCES = ("requests", "tokens", "input-tokens", "output-tokens")
# Every rate-limit header name both providers use, mapped to its record key: one dict
# lookup per response header instead of string surgery on the hot path.
_RATE_LIMIT_KEYS = {
    name: f"{resource.replace('-', '_')}_{kind}"
    for resource in _RESOURCES
    for kind in ("limit", "remaining")
    for name in (f"anthropic-ratelimit-{resource}-{kind}", f"x-ratelimit-{kind}-{resource}")
}

# Hop-by-hop, or set by our own server for this connection.
_NOT_RETURNED = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server", "upgrade", "trailer"}
)


def returned_headers(upstream: Iterable[tuple[str, str]], request_id: str) -> list[tuple[bytes, bytes]]:
    """Upstream headers for the client, plus ``x-request-id``.

    The provider's own ``x-request-id`` (OpenAI sends one) would clash with ccproxy's,
    so it is passed back as ``x-upstream-request-id``.
    """
    out = [(b"x-request-id", request_id.encode("latin-1"))]
    for name, value in upstream:
        lower = name.lower()
        if lower in _NOT_RETURNED:
            continue
        if lower == "x-request-id":
            lower = "x-upstream-request-id"
        out.append((lower.encode("latin-1"), value.encode("latin-1")))
    return out


def rate_limits(upstream: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Rate-limit headroom from Anthropic's and OpenAI's headers, keyed ``<resource>_<limit|remaining>``.

    ``anthropic-ratelimit-input-tokens-remaining: 9000`` -> ``{"input_tokens_remaining": 9000.0}``;
    ``x-ratelimit-limit-requests: 500`` -> ``{"requests_limit": 500.0}``.
    """
    found: dict[str, float] = {}
    for name, value in upstream:
        key = _RATE_LIMIT_KEYS.get(name.lower())
        if key is not None:
            try:
                found[key] = float(value)
            except ValueError:
                continue
    return found
