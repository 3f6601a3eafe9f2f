"""JSON from clients and providers: decoded fast when well formed, as leniently as ever otherwise."""

from __future__ import annotations

import json
import math
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
    """``data`` decoded, or ``None`` when it is not JSON.

    orjson decodes well-formed text two to three times faster than the standard library, which
    matters for the 50 to 100 KB bodies coding agents send with every request. What orjson
    refuses (a lone surrogate escape, ``NaN``, nesting deeper than 1,024 levels) is handed to
    ``json``, which accepts what it always did; bad UTF-8 and bad JSON give
    ``None``. Valid JSON stays readable where Python's limits would refuse it: an integer of more
    digits than Python converts reads as infinity (no count), and an object nested deeper than
    Python decodes keeps the members that decode on their own (the usage beside a deep answer).
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return load_json(data)
    except RecursionError:
        return _members_that_decode(data)
    except (ValueError, TypeError):
        return None


def load_json(data: bytes | bytearray | str) -> Any:
    """``json.loads``, but an integer too long for Python to convert is infinity rather than an error:
    the text is valid JSON, and no count or id of a provider's is that long."""
    try:
        return json.loads(data)
    except ValueError as exc:  # a hook for every integer costs three times the decode: only when needed
        if "integer string conversion" not in str(exc):
            raise
    return json.loads(data, parse_int=_whole_number)


def _whole_number(digits: str) -> int | float:
    try:
        return int(digits)
    except ValueError:  # more digits than sys.get_int_max_str_digits()
        return math.copysign(math.inf, -1 if digits.startswith("-") else 1)


MAX_MEMBER_STRINGS = 4_000
"""Strings stepped over to find the members of an object too deep to decode whole (the brackets between
them are counted in C, however many): some 10 ms at most, the time to step over them; an object with
more is not read."""
_SPACE = " \t\n\r"  # JSON's whitespace, and no other
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_COLON = re.compile(r"[ \t\n\r]*+:[ \t\n\r]*+")


def _members_that_decode(data: bytes | bytearray | str) -> dict[str, Any] | None:
    """The members of a top-level object whose values decode on their own; ``None`` for anything else.

    Found in one scan of its strings (each matched whole in C) and of the brackets between them
    (counted in C); each member's value is then decoded alone. One nested too deeply is left out (and
    so is an earlier member of its name, as a full decode keeps the last); a value that is not JSON
    makes the whole text none."""
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    spans = _member_spans(text)
    if spans is None:
        return None
    members = {}
    for key, value in spans:
        try:
            members[key] = load_json(value)
        except RecursionError:
            members.pop(key, None)
        except ValueError:
            return None
    return members


def _member_spans(text: str) -> list[tuple[str, str]] | None:
    """Each top-level member's key and the text of its value, in order; ``None`` when ``text`` is no object."""
    position = len(text) - len(text.lstrip(_SPACE))
    if not text.startswith("{", position):
        return None
    spans: list[tuple[str, str]] = []
    key: str | None = None
    value_from, depth = position + 1, 0
    for _ in range(MAX_MEMBER_STRINGS):
        quote = text.find('"', position)
        until = len(text) if quote < 0 else quote
        depth += _opened(text, position, until)
        if depth <= 0 or quote < 0:  # the object closed (only whitespace may follow), or never does
            end = text.rfind("}", position, until)
            if depth != 0 or quote >= 0 or end < 0 or text[end + 1 :].strip(_SPACE):
                return None
            if key is not None:
                spans.append((key, text[value_from:end]))
            return spans
        string = _STRING.match(text, quote)
        if string is None:
            return None
        position = string.end()
        colon = _COLON.match(text, position) if depth == 1 else None
        if colon is not None:  # a key of the top-level object: after "{" or after a value and its comma
            before = text[value_from:quote].rstrip(_SPACE)
            if key is None and before:
                return None
            if key is not None:
                if not before.endswith(","):
                    return None
                spans.append((key, before[:-1]))
            try:
                key = json.loads(string.group())
            except ValueError:
                return None
            value_from = position = colon.end()
    return None


def _opened(text: str, start: int, end: int) -> int:
    """Brackets opened less brackets closed in ``text[start:end]``, a stretch without strings."""
    opened = text.count("{", start, end) + text.count("[", start, end)
    return opened - text.count("}", start, end) - text.count("]", start, end)


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
