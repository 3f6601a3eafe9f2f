"""API key fingerprints: a short name for a key that cannot give the key back.

The fingerprint is the first 12 hex digits of HMAC-SHA256 over the key, keyed by a salt
(``ATTRIBUTION__KEY_SALT``, or a fixed string naming this use when no salt is set). 48 bits
tell a team's keys apart; they reveal nothing of the key, and no part of the key is kept.
"""

from __future__ import annotations

import hashlib
import hmac

FINGERPRINT_HEX_DIGITS = 12
DEFAULT_SALT = b"ccproxy api-key fingerprint v1"


def key_fingerprint(api_key: str, salt: bytes = DEFAULT_SALT) -> str:
    """The fingerprint of ``api_key`` (12 lowercase hex digits)."""
    digest = hmac.digest(salt, api_key.encode("utf-8", "replace"), hashlib.sha256)
    return digest.hex()[:FINGERPRINT_HEX_DIGITS]


def key_from_headers(x_api_key: str | None, authorization: str | None) -> str | None:
    """The credential a client sent: ``x-api-key`` (Anthropic), else a Bearer token (OpenAI, OAuth)."""
    if x_api_key:
        return x_api_key.strip() or None
    if authorization:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None
