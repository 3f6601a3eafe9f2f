"""The keys in a request's headers: the client's own, and the operator's sent in their place.

A client authenticates with one of the providers' credential headers (or, from a browser, a WebSocket
subprotocol); one that sends none, or only blank ones, gets the operator's configured key.
"""

from __future__ import annotations

from multidict import CIMultiDict

from ccproxy_core.accounting.attribution.keys import authorization_keys, is_blank_credential
from ccproxy_core.key_masking import SHORTEST_MASKED_KEY
from ccproxy_core.providers import PROVIDERS, Provider
from ccproxy_core.runtime.settings import Settings, UpstreamSettings

_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key", "x-goog-api-key")
CREDENTIAL_SET = frozenset(_CREDENTIAL_HEADERS)
"""The headers a key comes in: never dropped as hop-by-hop, never sent twice."""
WEBSOCKET_KEY_PROTOCOL = "openai-insecure-api-key."
"""A WebSocket subprotocol of this prefix carries the client's key (browsers cannot set headers)."""


def credential_values(headers: CIMultiDict[str]) -> tuple[str, ...]:
    """The keys in the headers sent upstream, every copy (an ``Authorization`` scheme stripped,
    whatever it is, and a WebSocket subprotocol's key)."""
    found: list[str] = []
    for name in _CREDENTIAL_HEADERS:
        for value in headers.getall(name, ()):
            # A value that holds no token (a scheme alone, Digest's parameters) is masked whole, as sent.
            keys = (authorization_keys(value) if name == "authorization" else ()) or (value.strip(),)
            found.extend(key for key in keys if len(key) >= SHORTEST_MASKED_KEY)
    for protocol in headers.get("sec-websocket-protocol", "").split(","):
        key = protocol.strip().removeprefix(WEBSOCKET_KEY_PROTOCOL)
        if protocol.strip().startswith(WEBSOCKET_KEY_PROTOCOL) and len(key) >= SHORTEST_MASKED_KEY:
            found.append(key)
    return tuple(found)


def client_credential_values(raw_headers: list[tuple[bytes, bytes]]) -> tuple[str, ...]:
    """:func:`credential_values` of the client's headers as they arrived."""
    return credential_values(
        CIMultiDict((name.decode("latin-1"), value.decode("latin-1")) for name, value in raw_headers)
    )


def configured_keys(upstream: UpstreamSettings) -> tuple[str, ...]:
    """The operator's keys (UPSTREAM__*_API_KEY) long enough to be looked for in recorded text."""
    keys = (upstream.anthropic_api_key, upstream.openai_api_key)
    return tuple(
        value for key in keys if key is not None and len(value := key.get_secret_value()) >= SHORTEST_MASKED_KEY
    )


def operator_keys_by_provider(settings: Settings) -> dict[str, str]:
    """Each provider's configured key (UPSTREAM__*_API_KEY), sent for clients that send none."""
    keys = {name: getattr(settings.upstream, f"{name}_api_key", None) for name in PROVIDERS}
    return {name: key.get_secret_value() for name, key in keys.items() if key is not None}


def client_sent_key(headers: CIMultiDict[str]) -> bool:
    """Whether the client authenticates itself: a credential header with a key in it (not empty, nor a
    scheme alone such as ``Bearer``), or the WebSocket key subprotocol."""
    sent = any(name in headers for name in _CREDENTIAL_HEADERS) and any(
        not is_blank_credential(value) for name in _CREDENTIAL_HEADERS for value in headers.getall(name, ())
    )
    return sent or WEBSOCKET_KEY_PROTOCOL in headers.get("sec-websocket-protocol", "")


def add_operator_key(out: CIMultiDict[str], provider: Provider, settings: Settings) -> None:
    """Send the configured API key (for a client that sent no key of its own), alone."""
    key = getattr(settings.upstream, f"{provider.name}_api_key", None)
    if key:
        for name in _CREDENTIAL_HEADERS:  # blank ones: the client sent no key, and gets the operator's alone
            out.popall(name, None)
        out[provider.key_header] = provider.key_value(key.get_secret_value())
