"""JSON from clients and providers: decoded fast when well formed, as leniently as ever otherwise."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

CHECKED_FROM_BYTES = 1024 * 1024
"""Texts from this size on are checked for what decoding them would hold in memory."""
MAX_DECODED_MEMORY_BYTES = 256 * 1024 * 1024
"""The most a decoded JSON text may be estimated to take in memory: a 60 MB text of empty objects
(``[{},{},...]``, 58 KB gzipped) would take some 2 GB as Python objects."""


def too_costly_to_decode(data: bytes | bytearray) -> bool:
    """Whether decoding ``data`` would hold more than :data:`MAX_DECODED_MEMORY_BYTES` as Python objects.

    Estimated from its structure (counted in C, about 20 ms for 60 MB): each object, array and value
    costs far more as an object than as text, while long strings (text, base64 media) cost about as
    much as their bytes.
    """
    if len(data) < CHECKED_FROM_BYTES:
        return False
    estimate = 240 * data.count(b"{") + 72 * data.count(b"[") + 40 * data.count(b",") + len(data)
    return estimate > MAX_DECODED_MEMORY_BYTES


def decode_json(data: bytes | bytearray | str) -> Any:
    """``data`` decoded, or ``None`` when it is not JSON (or is nested too deeply to tell).

    orjson decodes well-formed text two to three times faster than the standard library, which
    matters for the 50 to 100 KB bodies coding agents send with every request. What orjson
    refuses (a lone surrogate escape, ``NaN``, nesting deeper than 1,024 levels) is handed to
    ``json``, which accepts what it always did; bad UTF-8 and bad JSON give ``None``.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return None


_VALID_STRING = re.compile(r'(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+')  # possessive: no backtracking
"""The content of a JSON string: no control character, and only the escapes JSON has."""


def without_long_strings(text: str, longest: int) -> str:
    """``text`` with every JSON string longer than ``longest`` characters emptied to ``""``, the rest unchanged.

    Decoding holds the interpreter (no other thread runs), so a worker thread alone does not
    spare the event loop; the long strings (prompts, output text, base64 media) are most of a
    large message and nothing usage is read from. Strings are found with ``str.find``, a C scan,
    and the rest is left to the decoder: text that is not JSON stays not JSON.
    """
    pieces: list[str] = []
    kept_from = position = 0
    while (start := text.find('"', position)) >= 0:
        end = _closing_quote(text, start + 1)
        if end - start - 1 > longest:
            if _VALID_STRING.fullmatch(text, start + 1, end) is None:
                return text  # left in, a string that is no JSON string keeps the text from decoding, as in full
            pieces.append(text[kept_from : start + 1])
            kept_from = end
        position = end + 1
    if not pieces:
        return text
    pieces.append(text[kept_from:])
    return "".join(pieces)


def _closing_quote(text: str, start: int) -> int:
    """Index of the quote ending the string whose content begins at ``start`` (or the end of ``text``)."""
    search_from = start
    while (quote := text.find('"', search_from)) >= 0:
        backslashes = 0
        while quote - backslashes > start and text[quote - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return quote
        search_from = quote + 1
    return len(text)
