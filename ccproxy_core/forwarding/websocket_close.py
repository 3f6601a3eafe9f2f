"""How a close crosses a relayed WebSocket: the code and reason one side sent, passed to the other as sent.

Some codes describe a connection rather than a frame (1005 no code given, 1006 dropped, 1015 TLS
failed) and may not be sent: the other side gets a stand-in instead.
"""

from __future__ import annotations

from typing import Any

from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers.base import read_error

CLIENT_LEFT = "client closed the WebSocket before the answer ended"
MAX_REASON_BYTES = 123
"""A close frame carries at most 125 bytes: the code's two and a reason of up to 123 (RFC 6455, 5.5)."""


def sendable_code(code: int | None, stand_in: int) -> int:
    """``code`` when it may be sent in a close frame; otherwise ``stand_in``."""
    if code is None:
        return 1000
    return code if code in (1000, 1001, 1002, 1003) or 1007 <= code <= 1014 or 3000 <= code <= 4999 else stand_in


def sendable_reason(reason: object) -> str:
    """``reason`` as a close frame can carry it: text, cut on a character boundary to :data:`MAX_REASON_BYTES`."""
    if not isinstance(reason, str):
        return ""
    encoded = reason.encode("utf-8", "replace")
    if len(encoded) <= MAX_REASON_BYTES:
        return encoded.decode("utf-8")
    return encoded[:MAX_REASON_BYTES].decode("utf-8", "ignore")


def describe(code: int | None, reason: str) -> str:
    """How a record names the provider's close: `` (code 1011: overloaded)``, or nothing when none was sent."""
    if code is None:
        return ""
    return f" (code {code}: {reason})" if reason else f" (code {code})"


def error_text_before_close(error: Any) -> str:
    """The provider's ``error`` event that no answer took, as the tail of a later close's message."""
    said = Usage()
    read_error(said, error, prefer_code=True)
    return f", after its error {said.error_type}: {said.error_message}" if said.error_type or said.error_message else ""
