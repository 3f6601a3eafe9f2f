"""API key fingerprints: a short name for a key that does not hold the key.

The fingerprint is the first 12 hex digits of HMAC-SHA256 over the key, keyed by a salt
(``ATTRIBUTION__KEY_SALT``, or a fixed string naming this use when no salt is set). 48 bits
tell a team's keys apart, and no part of the key is kept. A key as long and random as the providers
issue cannot be found from its fingerprint; a short one can, by trying candidates, unless the salt
is secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

FINGERPRINT_HEX_DIGITS = 12
DEFAULT_SALT = b"ccproxy api-key fingerprint v1"
_FINGERPRINT = re.compile(rf"[0-9a-f]{{{FINGERPRINT_HEX_DIGITS}}}")


def key_fingerprint(api_key: str, salt: bytes = DEFAULT_SALT) -> str:
    """The fingerprint of ``api_key`` (12 lowercase hex digits)."""
    digest = hmac.digest(salt, api_key.encode("utf-8", "replace"), hashlib.sha256)
    return digest.hex()[:FINGERPRINT_HEX_DIGITS]


def is_fingerprint(text: str) -> bool:
    """Whether ``text`` is a fingerprint as :func:`key_fingerprint` writes it, in either case (ASCII hex only)."""
    return _FINGERPRINT.fullmatch(text.lower()) is not None


KEY_HEADERS = (b"x-api-key", b"api-key", b"x-goog-api-key")
"""Headers whose whole value is a key: Anthropic's, Azure OpenAI's, Google's."""
_WEBSOCKET_KEY_PROTOCOL = "openai-insecure-api-key."


def keys_in_headers(
    found: Mapping[bytes, str], schemes: tuple[str, ...] | None = ("bearer", "basic")
) -> tuple[str, ...]:
    """Every credential a client sent (it may send one in several headers), by raw header name.

    In order of preference: ``x-api-key`` (Anthropic), ``api-key`` (Azure OpenAI), ``x-goog-api-key``
    (Google), the ``Authorization`` token of one of ``schemes`` (``None``: of any scheme, and the
    value whole when it names none), the key in an ``openai-insecure-api-key.<key>`` WebSocket subprotocol.
    """
    keys = [found[name].strip() for name in KEY_HEADERS if name in found]
    if authorization := found.get(b"authorization"):
        if schemes is None:
            keys.extend(authorization_keys(authorization))
        else:
            keys.append(authorization_token(authorization, schemes))
    if protocols := found.get(b"sec-websocket-protocol"):
        for protocol in protocols.split(","):
            if protocol.strip().startswith(_WEBSOCKET_KEY_PROTOCOL):
                keys.append(protocol.strip()[len(_WEBSOCKET_KEY_PROTOCOL) :])
    return tuple(filter(None, keys))


def authorization_token(value: str, schemes: tuple[str, ...] | None) -> str:
    """The token of an ``Authorization`` value whose scheme is one of ``schemes``, else ``""``.

    With ``schemes`` of ``None``, of any scheme: all after ``Bearer`` or ``Basic``; after another
    scheme, its first word when that is a credential (``Token <key>``; Digest's ``username="alice", ...``
    are parameters, no key); a value of one word with a digit in it (a key sent bare; a scheme
    alone, such as ``Negotiate``, is none).
    """
    parts = value.split(None, 1)  # any blank after the scheme, as HTTP servers take it
    if len(parts) < 2:
        bare = parts[0] if parts else ""
        return bare if schemes is None and any(character.isdigit() for character in bare) else ""
    scheme, token = parts[0].lower(), parts[1].strip()
    if schemes is not None:
        return token if scheme in schemes else ""
    if scheme in ("bearer", "basic"):
        return token
    first = token.split(None, 1)[0]
    return first if _TOKEN68.fullmatch(first) else ""


_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
"""HTTP's form of a credential given after its scheme (RFC 9110's token68)."""
_WORD_BREAK = re.compile(r"[\s,]+")


def authorization_keys(value: str) -> tuple[str, ...]:
    """The keys to mask of an ``Authorization`` value, of any scheme: its token, and the token's
    first word when it has more (a key with a label after it, or two keys joined by a comma)."""
    token = authorization_token(value, None)
    first = _WORD_BREAK.split(token, 1)[0]
    return tuple(dict.fromkeys(key for key in (token, first) if key))


_READ_BY_PROVIDER = {
    # OpenAI reads the Bearer token (a browser's WebSocket, which cannot send one, its key subprotocol);
    # Azure OpenAI, sent neither, its api-key.
    "openai": (b"authorization", b"sec-websocket-protocol", b"api-key"),
    "anthropic": (b"x-api-key", b"authorization"),  # an API key, else an OAuth Bearer token
}
"""The headers each provider reads a key from, in the order it reads them."""


def key_from_headers(found: Mapping[bytes, str], service_type: str | None = None) -> str | None:
    """The credential a request is attributed to, the one its provider bills: the first header its provider
    reads a key from (a key in a header it ignores, sent beside, must not take the spend, nor leave a key
    budget); with none of those, the first of :func:`keys_in_headers`, Bearer tokens only (an
    OpenAI-compatible server behind the base URL may read another: Google's ``x-goog-api-key``)."""
    for name in _READ_BY_PROVIDER.get(service_type or "", ()):
        if value := _credential(name, found.get(name, "")):
            return value
    keys = keys_in_headers(found, ("bearer",))
    return keys[0] if keys else None


def sent_a_credential(found: Mapping[bytes, str]) -> bool:
    """Whether the client sent a key of its own, in any header a provider reads one from (else ccproxy sends
    the operator's configured key, if any)."""
    sent = any(not is_blank_credential(found.get(name, "")) for name in (*KEY_HEADERS, b"authorization"))
    return sent or _WEBSOCKET_KEY_PROTOCOL in found.get(b"sec-websocket-protocol", "")


def is_blank_credential(value: str) -> bool:
    """Whether a credential header holds no key: empty, or a scheme alone (``Bearer``, as an SDK given an
    empty key sends it). A client that sends only such headers sent no key."""
    scheme, _, rest = value.strip().partition(" ")
    return not scheme or (scheme.lower() in ("bearer", "basic") and not rest.strip())


def _credential(name: bytes, value: str) -> str:
    if name == b"authorization":
        parts = value.split(None, 1)  # any blank after the scheme, as HTTP servers take it
        return parts[1].strip() if len(parts) == 2 and parts[0].lower() == "bearer" else ""
    if name == b"sec-websocket-protocol":
        keys = [part.strip() for part in value.split(",") if part.strip().startswith(_WEBSOCKET_KEY_PROTOCOL)]
        return keys[0][len(_WEBSOCKET_KEY_PROTOCOL) :].strip() if keys else ""
    return value.strip()
