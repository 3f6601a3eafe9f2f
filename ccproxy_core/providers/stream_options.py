"""``stream_options.include_usage`` written into a Chat Completions request as text, the rest left byte for byte.

Decoding a body and encoding it again would change what the client sent beyond the one member
ccproxy adds: numbers (an integer of 2**64 or more read back as a float), escapes, whitespace,
duplicate keys. The member goes in where it belongs in the text instead.
"""

from __future__ import annotations

import json

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()
_MEMBER = b',"stream_options":{"include_usage":true}'
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def with_include_usage(body: bytes | bytearray, present: bool) -> bytes | bytearray:
    """``body`` (a JSON object whose ``stream_options``, if ``present``, is ``null`` or an object without
    ``include_usage``) asking for usage; unchanged when its text cannot be edited safely (not UTF-8, a member
    the decoder could not read)."""
    if body.startswith(_BYTE_ORDER_MARK):  # read past by the provider's JSON parser, as by ccproxy's
        return _BYTE_ORDER_MARK + with_include_usage(body[len(_BYTE_ORDER_MARK) :], present)
    if not body.lstrip(_WHITESPACE.encode()).startswith(b"{"):
        return body  # UTF-16 or UTF-32 text (JSON allows them): UTF-8 bytes cannot go in it
    if not present and b'"stream_options"' not in body:
        return _appended(body)
    try:
        text = body.decode("utf-8")
        found = _last_member_value(text, "stream_options")
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError):
        return body
    if found is None:  # the name is only quoted inside a value
        return body if present else _appended(body)
    if not present:  # there, but too deep for the decoder to read: it may say no
        return body
    start, end = found
    value = text[start:end]
    if value == "null":
        edited = '{"include_usage":true}'
    elif value.startswith("{") and value[1:-1].strip(_WHITESPACE):
        edited = value[:-1] + ',"include_usage":true}'
    elif value.startswith("{"):
        edited = '{"include_usage":true}'
    else:
        return body
    return (text[:start] + edited + text[end:]).encode("utf-8")


def _appended(body: bytes | bytearray) -> bytes | bytearray:
    """``body`` with the member added before its closing brace."""
    kept = body.rstrip(_WHITESPACE.encode())
    return kept[:-1] + _MEMBER + b"}" + body[len(kept) :] if kept.endswith(b"}") else body


def _last_member_value(text: str, name: str) -> tuple[int, int] | None:
    """Where the value of the top-level member ``name`` (its last copy, as decoders read it) starts and ends."""
    at = _skip(text, 0)
    if text[at] != "{":
        raise ValueError("not an object")
    at = _skip(text, at + 1)
    found = None
    while text[at] != "}":
        if text[at] != '"':
            raise ValueError("not a member name")
        key, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("no colon")
        start = _skip(text, at + 1)
        end = _DECODER.raw_decode(text, start)[1]
        if key == name:
            found = (start, end)
        at = _skip(text, end)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return found


def _skip(text: str, at: int) -> int:
    while text[at] in _WHITESPACE:
        at += 1
    return at
