"""The one shared, pooled HTTP client that talks to the providers.

aiohttp rather than httpx: measured by benchmarks/bench_upstream_client.py, one request
costs httpx 0.28 about 5 times the CPU it costs aiohttp (470 against 97 microseconds, one
at a time) and 14 times at 16 in flight, and the proxy's added latency is a headline
figure (docs/benchmarks.md).
"""

from __future__ import annotations

import aiohttp
from multidict import CIMultiDict
from starlette.datastructures import Headers

from ccproxy_core.settings import Settings

# Hop-by-hop headers (RFC 9110 7.6.1) and those the client library sets for us.
_NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
        # Asking for identity keeps usage parsing possible; the body still passes unchanged.
        "accept-encoding",
    }
)


def open_session(settings: Settings) -> aiohttp.ClientSession:
    """A pooled session with the configured timeouts; close it on shutdown."""
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream.connect_timeout_seconds,
        sock_read=settings.upstream.read_timeout_seconds,
    )
    connector = aiohttp.TCPConnector(limit=settings.upstream.max_connections, limit_per_host=0, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )


def forwarded_headers(headers: Headers, service_type: str, settings: Settings) -> CIMultiDict[str]:
    """The client's headers as the provider should see them: credentials and versions untouched."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        # x-ccproxy-* headers are ccproxy's own (project, session, tags): never the provider's business.
        if name not in _NOT_FORWARDED and not name.startswith("x-ccproxy-"):
            out.add(name, value)
    out["accept-encoding"] = "identity"
    _add_fallback_key(out, service_type, settings)
    return out


def auto_headers_to_skip(headers: CIMultiDict[str]) -> tuple[str, ...] | None:
    """Keep aiohttp from adding its own User-Agent when the client sent none.

    Asked per request rather than set on the session: a session-wide list makes aiohttp
    copy every request's headers, and nearly every client sends a User-Agent.
    """
    return None if "user-agent" in headers else ("User-Agent",)


def _add_fallback_key(out: CIMultiDict[str], service_type: str, settings: Settings) -> None:
    """Use the configured API key only when the client sent no credentials of its own."""
    if "x-api-key" in out or "authorization" in out:
        return
    if service_type == "anthropic" and settings.upstream.anthropic_api_key:
        out["x-api-key"] = settings.upstream.anthropic_api_key.get_secret_value()
    elif service_type == "openai" and settings.upstream.openai_api_key:
        out["authorization"] = f"Bearer {settings.upstream.openai_api_key.get_secret_value()}"
