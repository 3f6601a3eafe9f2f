"""The pooled HTTP clients that talk to the providers: one pool per provider, a bounded wait.

aiohttp rather than httpx: measured by benchmarks/bench_upstream_client.py, one request
costs httpx 0.28 about 5 times the CPU it costs aiohttp (470 against 97 microseconds, one
at a time) and 14 times at 16 in flight, and the proxy's added latency is a headline
figure (docs/benchmarks.md).

Each provider has its own session and connection pool, so requests hanging on one
provider never hold a connection another provider's request needs. Waiting for a free
connection is bounded by ``UPSTREAM__POOL_TIMEOUT_SECONDS``: a semaphore of the pool's
size is taken before each request and given back when its connection is released.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import ssl

import aiohttp
from multidict import CIMultiDict
from starlette.datastructures import Headers
from yarl import URL

from ccproxy_core.error_lines import library_reason
from ccproxy_core.forwarding.credentials import CREDENTIAL_SET, add_operator_key, client_sent_key
from ccproxy_core.forwarding.send_deadlines import SendDeadlinePassed, SendDeadlines
from ccproxy_core.forwarding.upstream_protocol import use_upstream_protocol
from ccproxy_core.forwarding.websocket_upgrade import upgrade_session
from ccproxy_core.providers import PROVIDERS, Provider
from ccproxy_core.providers.openai_regions import is_regional
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.security.auth import strip_session_cookies

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
        # The client's 100-continue was answered by ccproxy, which has the whole body: asked
        # again, the upstream client would hold the body until the provider said 100.
        "expect",
    }
)


SLOWEST_UPLOAD_BYTES_PER_SECOND = 256 * 1024
"""The slowest a request body is allowed to reach the provider: a 16 MB body may take 64 s beyond
the connect and read timeouts before its answer's head."""


class PoolTimeout(Exception):
    """No pooled connection came free within ``UPSTREAM__POOL_TIMEOUT_SECONDS``."""


_SUBPROTOCOLS = "sec-websocket-protocol"
_SENT_ONCE = CREDENTIAL_SET | {_SUBPROTOCOLS}
"""Headers a second copy of would carry another key: the WebSocket subprotocols carry one too
(``openai-insecure-api-key.<key>``), and every reader of theirs takes the first copy."""


class UnsendableHeader(ValueError):
    """A client's header ccproxy cannot forward as it is: its bytes are not UTF-8 (aiohttp sends text as
    UTF-8, so they would change), or it is a credential sent twice (which key the provider bills is
    then unknown, and the record would name one of them)."""

    def __init__(self, name: str, repeated: bool = False) -> None:
        if repeated and name == _SUBPROTOCOLS:
            super().__init__(
                f"the {name} header was sent more than once; send the subprotocols as one comma-separated list"
            )
        elif repeated:
            super().__init__(f"the {name} header was sent more than once; send one key per request")
        else:
            super().__init__(f"the {name} header is not valid UTF-8, and ccproxy forwards headers only unchanged")


class UpstreamPool:
    """One provider's session, and the bounded wait for one of its connections."""

    def __init__(self, provider: Provider, base_url: str, settings: Settings) -> None:
        self.provider, self.base_url = provider, base_url
        self.size = settings.upstream.max_connections
        self.wait_seconds = settings.upstream.pool_timeout_seconds
        self.session = _open_session(settings)
        # aiohttp's read timeout runs only once the body is written, and restarts at every header line.
        self.head_deadline_seconds = settings.upstream.connect_timeout_seconds + settings.upstream.read_timeout_seconds
        self._deadlines = SendDeadlines()
        self._upgrades: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(self.size)

    @property
    def upgrades(self) -> aiohttp.ClientSession:
        """The session WebSocket upgrades are sent from, on this pool's connections (see ``websocket_upgrade``)."""
        if self._upgrades is None:
            self._upgrades = upgrade_session(self.session)
        return self._upgrades

    async def send(
        self, method: str, url: str, body: bytes | bytearray | None, headers: CIMultiDict[str]
    ) -> aiohttp.ClientResponse:
        """Send a request and read the head of its answer, within the connect and read timeouts together
        and the body's time at :data:`SLOWEST_UPLOAD_BYTES_PER_SECOND`; ``TimeoutError`` after (up to a
        second late): a provider that stops reading the body, or sends its head a line at a time,
        holds no request longer. A redirect is the answer: followed, it would take the key along."""
        upload_seconds = len(body) / SLOWEST_UPLOAD_BYTES_PER_SECOND if body else 0.0
        task = self._deadlines.start(self.head_deadline_seconds + upload_seconds)
        try:
            return await self.session.request(
                method,
                URL(url, encoded=True),
                # A view: aiohttp cuts a body to its length before writing it, a copy of bytes (30 MiB for 30 MiB).
                data=memoryview(body) if body else None,
                headers=headers,
                skip_auto_headers=auto_headers_to_skip(headers),
                allow_redirects=False,
            )
        except asyncio.CancelledError:
            if self._deadlines.timed_out(task):
                raise SendDeadlinePassed from None
            raise
        finally:
            self._deadlines.end(task)

    async def acquire(self) -> None:
        """Take a connection slot, or raise :class:`PoolTimeout` after the configured wait."""
        if not self._slots.locked():
            await self._slots.acquire()  # the usual case: no timer to set up
            return
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_seconds)
        except TimeoutError:
            raise PoolTimeout from None

    def release(self) -> None:
        self._slots.release()

    @property
    def in_use(self) -> int:
        """Connection slots taken now."""
        return self.size - self._slots._value  # asyncio exposes no public count

    async def close(self) -> None:
        self._deadlines.close()
        if self._upgrades is not None:
            await self._upgrades.close()
        await self.session.close()


def open_pools(settings: Settings) -> dict[str, UpstreamPool]:
    """One pool per provider; close them all on shutdown."""
    return {
        name: UpstreamPool(provider, base_url(provider, settings), settings) for name, provider in PROVIDERS.items()
    }


async def close_pools(pools: dict[str, UpstreamPool]) -> None:
    for pool in pools.values():
        with contextlib.suppress(Exception):
            await pool.close()


def base_url(provider: Provider, settings: Settings) -> str:
    """The configured base URL of a provider (normalised by the settings), else its default."""
    return getattr(settings.upstream, f"{provider.name}_base_url", None) or provider.default_base_url


def regional_providers(settings: Settings) -> frozenset[str]:
    """The providers whose answers come from their regional processing hosts (see ``openai_regions``)."""
    regional = settings.upstream.openai_regional_processing
    if regional is None:
        regional = is_regional(base_url(PROVIDERS["openai"], settings))
    return frozenset({"openai"}) if regional else frozenset()


MAX_ANSWER_HEADER_BYTES = 64 * 1024
"""The longest status line or header of a provider's answer ccproxy reads (longer: a 502)."""


def _open_session(settings: Settings) -> aiohttp.ClientSession:
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream.connect_timeout_seconds,
        sock_read=settings.upstream.read_timeout_seconds,
    )
    connector = aiohttp.TCPConnector(limit=settings.upstream.max_connections, limit_per_host=0, ttl_dns_cache=300)
    use_upstream_protocol(connector)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,  # the client gets the provider's bytes; ccproxy decodes a copy
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
        # aiohttp's 8 KiB refused answers the SDKs read (a long rate-limit or trace header); still bounded.
        max_line_size=MAX_ANSWER_HEADER_BYTES,
        max_field_size=MAX_ANSWER_HEADER_BYTES,
    )


def forwarded_headers(headers: Headers, provider: Provider, settings: Settings) -> CIMultiDict[str]:
    """The client's headers as the provider should see them: credentials, versions and encodings untouched.

    Raises :class:`UnsendableHeader` for a value whose bytes are not UTF-8, or a credential header sent twice.
    """
    out: CIMultiDict[str] = CIMultiDict()
    connection = headers.getlist("connection")
    nominated = _nominated(",".join(connection)) if connection else ()
    for name, value in headers.items():
        # x-ccproxy-* headers are ccproxy's own (project, session, tags): never the provider's business.
        if name not in _NOT_FORWARDED and not name.startswith("x-ccproxy-") and name not in nominated:
            sent = value if value.isascii() else _as_received(name, value)
            kept = strip_session_cookies(sent) if name == "cookie" else sent
            if kept is not None:
                if name in _SENT_ONCE and name in out:
                    raise UnsendableHeader(name, repeated=True)
                out.add(name, kept)
    if not client_sent_key(out):  # credentials are never dropped above: these are the client's as sent
        add_operator_key(out, provider, settings)
    return out


def _nominated(connection: str) -> frozenset[str]:
    """The headers the ``Connection`` header names: hop-by-hop, for this connection only (RFC 9110 7.6.1).

    Credentials excepted: left out, the provider would see no key, or another, where the record names the
    client's."""
    return frozenset(token.strip().lower() for token in connection.split(",")) - CREDENTIAL_SET


def _as_received(name: str, value: str) -> str:
    """The text whose UTF-8 bytes are the client's: Starlette decodes header bytes as latin-1."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        raise UnsendableHeader(name) from None


def auto_headers_to_skip(headers: CIMultiDict[str]) -> tuple[str, ...]:
    """Keep aiohttp from adding headers the client did not send (its User-Agent, Accept, Accept-Encoding,
    Content-Type).

    Asked per request rather than set on the session: a session-wide list makes aiohttp
    copy every request's headers.
    """
    # Spelt out rather than a generator: this runs for every request (0.1 µs against 0.5).
    sent = ("User-Agent" in headers, "Accept" in headers, "Accept-Encoding" in headers, "Content-Type" in headers)
    return _AUTO_HEADERS[sent]


_ADDED_BY_AIOHTTP = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_AUTO_HEADERS = {
    sent: tuple(name for name, was_sent in zip(_ADDED_BY_AIOHTTP, sent, strict=True) if not was_sent)
    for sent in itertools.product((False, True), repeat=len(_ADDED_BY_AIOHTTP))
}
"""The headers to skip, by which of them the client sent (aiohttp adds a body's Content-Type too)."""


_RETRIED_BY_AIOHTTP = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
"""Methods aiohttp sends again on a new connection when a reused one turns out closed: a failure to
connect then may follow a first attempt the provider received."""


def never_connected(exc: BaseException, method: str) -> bool:
    """Whether the request failed before any connection to the provider was made (refused, DNS, TLS, the
    connect timeout): no provider saw it."""
    connecting = isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError)
    return connecting and method not in _RETRIED_BY_AIOHTTP


def unanswered_request(service: str, exc: BaseException) -> tuple[int, str, str]:
    """Status, error type and message for a request the provider did not answer.

    Whether it may have received the request matters to the operator, who may be billed for it:
    a connection that was never made (refused, DNS, TLS) did not; one reset or closed after the
    request was written may have.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return 504, "upstream_timeout", f"could not connect to {service} within UPSTREAM__CONNECT_TIMEOUT_SECONDS"
    if isinstance(exc, SendDeadlinePassed):
        deadline = (
            "UPSTREAM__CONNECT_TIMEOUT_SECONDS and UPSTREAM__READ_TIMEOUT_SECONDS together "
            f"(and the body's time at {SLOWEST_UPLOAD_BYTES_PER_SECOND // 1024} KiB/s)"
        )
        return 504, "upstream_timeout", f"{service} did not take the request and answer within {deadline}"
    if isinstance(exc, TimeoutError):
        return 504, "upstream_timeout", f"no answer from {service} within UPSTREAM__READ_TIMEOUT_SECONDS"
    if isinstance(exc, aiohttp.ClientResponseError):  # it answered, but not in HTTP a client could be given
        reason = library_reason(str(exc.message))
        return 502, "upstream_invalid_response", f"the answer of {service} is not valid HTTP: {reason}"
    connected = isinstance(exc, aiohttp.ClientOSError) and not isinstance(exc, aiohttp.ClientConnectorError)
    if connected or isinstance(exc, aiohttp.ServerDisconnectedError):
        message = f"{service} closed the connection without answering; it may have received the request"
        return 502, "upstream_disconnected", message
    if isinstance(exc, aiohttp.ClientConnectorError):
        return (
            502,
            "upstream_unreachable",
            f"cannot reach {service} at {_host_port(exc.host, exc.port)}: {_os_reason(exc.os_error)}",
        )
    return 502, "upstream_unreachable", f"cannot reach {service}: {exc}"


def _host_port(host: str, port: int | None) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _os_reason(error: OSError) -> str:
    """What the system said (``Connection refused``), without asyncio's wording around it (``Connect call
    failed``); name resolution and TLS errors keep their own text (an SSL error's errno is no system error)."""
    if isinstance(error, socket.gaierror | ssl.SSLError) or not (isinstance(error.errno, int) and error.errno > 0):
        return error.strerror or str(error) or type(error).__name__
    return os.strerror(error.errno)


def unsendable_request(
    exc: ValueError, headers: CIMultiDict[str], provider: Provider, settings: Settings
) -> tuple[int, str, str]:
    """Status, error type and message for a request the HTTP client refuses to send.

    The client's own header or URL is the client's fault (400); the operator's key or base
    URL is not, and the answer must say which setting to fix rather than blame the client.
    """
    setting = _unsendable_setting(headers, provider, settings)
    if setting is None:
        return 400, "invalid_request", f"ccproxy cannot forward this request: {exc}"
    return 500, "ccproxy_misconfigured", f"ccproxy cannot forward requests: {setting} cannot be sent ({exc})"


def _unsendable_setting(headers: CIMultiDict[str], provider: Provider, settings: Settings) -> str | None:
    name = provider.name.upper()
    if "@" in base_url(provider, settings).partition("://")[2].partition("/")[0]:
        return f"UPSTREAM__{name}_BASE_URL"
    key = getattr(settings.upstream, f"{provider.name}_api_key", None)
    if key is not None:
        configured = provider.key_value(key.get_secret_value())
        if headers.get(provider.key_header) == configured and not configured.isprintable():
            return f"UPSTREAM__{name}_API_KEY"
    return None
