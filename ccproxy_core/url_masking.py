"""The user and password of URLs, masked: in free text, and in a setting that is one URL."""

from __future__ import annotations

import re

from ccproxy_core.key_masking import ELLIPSIS, MASK

_URL_SCHEME = re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
_URL_END = re.compile(r"\s")


def mask_url_userinfo(text: str) -> str:
    """``text`` with what stands between each URL's ``scheme://`` and the last ``@`` of that URL masked.

    Parsers take a URL's user and password up to the last ``@`` of its authority, and a password may
    hold ``@``, ``/`` or quotes unescaped (``clickhouse://u:p@ss@host``, ``u:pa/ss@host``, which some
    refuse, ``u:it's@host``): a URL runs to the next whitespace, and masking up to its last ``@`` hides
    the password whichever way it is read, at the cost of hiding a host when the URL has an ``@`` in
    its path or more text follows it unspaced. A URL that runs into a cut (text ending in an ellipsis)
    may have lost its ``@`` there: the rest of it is masked. Each URL's end and last ``@`` are found
    once, so a long run of schemes costs one scan.
    """
    pieces, done, end, last_at = [], 0, -1, -1
    cut = text.endswith(ELLIPSIS)
    for scheme in _URL_SCHEME.finditer(text):
        start = scheme.end()
        if start <= done:
            continue  # inside a part already masked
        if start > end:
            found = _URL_END.search(text, start)
            end = found.start() if found else len(text)
            last_at = text.rfind("@", start, end)
            if last_at < 0 and cut and end == len(text):
                last_at = end - len(ELLIPSIS)
        if last_at > start:
            pieces += [text[done:start], MASK]
            done = last_at
    return "".join([*pieces, text[done:]]) if pieces else text


def masked_url(value: str) -> str:
    """A setting that is one URL, with all between its ``scheme://`` and its last ``@`` masked (a
    password may hold spaces too, which end a URL in free text)."""
    scheme = _URL_SCHEME.match(value)
    last_at = value.rfind("@")
    if scheme is None or last_at <= scheme.end():
        return value
    return value[: scheme.end()] + MASK + value[last_at:]
