"""Errors of libraries and databases as one short line a record, a log or a client may show."""

from __future__ import annotations

import re

from ccproxy_core.safe_values import safe_text

_QUOTED_BYTES = re.compile(r"""(?<![A-Za-z0-9_])b['"]""")
# aiohttp's parser errors print as ``<TransferEncodingError: 400, message='...'>``: the 400 is the status
# a server would answer such bytes with, never the provider's, so a record keeps the name and the text.
_PARSER_ERROR = re.compile(r"""<(\w+): \d{3}, message=(['"])(.*?)\2>""")
LIBRARY_REASON_CHARS = 200


def library_reason(text: str) -> str:
    """An HTTP library's error text as a record may keep it: on one line, cut before any bytes it quotes
    (``b'{"id": ...'``: the answer's own content, which is never stored), at most 200 characters."""
    text = _PARSER_ERROR.sub(r"\1: \3", text[: LIBRARY_REASON_CHARS * 10])  # bounded: its search is quadratic
    found = _QUOTED_BYTES.search(text)
    reason = " ".join((text[: found.start()] if found else text).split()).rstrip(" :")
    return safe_text(reason, LIBRARY_REASON_CHARS)  # its ellipsis tells the masking a URL may run on past the cut


def error_line(exc: BaseException, max_length: int = 300) -> str:
    """An error (a database's, say) as one short line: its stack trace is for the server log, not the client."""
    text = str(exc).split("Stack trace", 1)[0]
    line = " ".join(text.split()).rstrip(" :") or type(exc).__name__
    return line if len(line) <= max_length else line[: max_length - 1] + "…"
