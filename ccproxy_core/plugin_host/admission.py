"""A plugin's say on a proxied request before it is forwarded: let it through, add headers, or refuse it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "keep-alive",
        "proxy-connection",
        "request-id",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-ccproxy-request-id",
        "x-request-id",
    }
)
"""Headers a plugin may not add: they frame or describe the answer's body (a second Content-Length would
make every answer unreadable), or are ccproxy's own or the provider's request id (which SDKs read)."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``admit_request`` returns.

    With ``refuse_status`` set, ccproxy answers the request itself, without forwarding it,
    with that status and an error body in the provider's own shape: the provider's usual
    type for that status (what its SDKs expect) and ``message``. The record's ``error_type``
    is ``error_type`` (``None``: ``refused``); on a WebSocket it is also the error event's
    ``code``. ``headers`` go on the response either way (names in lower case, values plain
    ASCII, never a secret).
    """

    refuse_status: int | None = None
    error_type: str | None = None
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` pairs; a dict is taken too, as its items."""

    def __post_init__(self) -> None:
        if isinstance(self.headers, Mapping):  # a refusal must not be lost for the shape of its headers
            object.__setattr__(self, "headers", tuple(self.headers.items()))


def admission_problem(answer: Any) -> str | None:
    """Why ``answer`` cannot be used as an ``admit_request`` answer, or ``None`` when it can.

    Checked where a plugin's answer enters, so that what is sent on (a status line, response
    headers, a worker's channel) cannot fail because of it.
    """
    if not isinstance(answer, Admission):
        return f"returned {type(answer).__name__}, not None or an Admission"
    status = answer.refuse_status
    if status is not None and (type(status) is not int or not 400 <= status <= 599):
        return f"refuse_status {status!r} is not None or an int from 400 to 599"
    if not (answer.error_type is None or isinstance(answer.error_type, str)) or not isinstance(answer.message, str):
        return "error_type must be None or a str, and message a str"
    if not isinstance(answer.headers, tuple | list):
        return "headers must be a tuple of (name, value) pairs"
    for pair in answer.headers:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
            return f"header {pair!r} is not a (name, value) pair of str"
        if not _HEADER_NAME.fullmatch(pair[0]) or not _HEADER_VALUE.fullmatch(pair[1]):
            return f"header {pair[0]!r}: its name must be a token (letters, digits, -) and its value printable ASCII"
        if pair[0].lower() in RESERVED_HEADERS:
            return f"header {pair[0]!r} frames or describes the answer, or is ccproxy's own: a plugin may not set it"
    return None
