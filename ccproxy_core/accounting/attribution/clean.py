"""Making a value that came from a client safe to store: valid UTF-8, no control characters, bounded."""

from __future__ import annotations

import re

from ccproxy_core.key_masking import without_key_shapes
from ccproxy_core.safe_values import FORMAT_CHARS

# C0 controls, DEL, C1 controls, the Unicode line and paragraph separators and format characters
# (bidi overrides): a log viewer, terminal or JavaScript source must never receive one raw.
_CONTROL = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{FORMAT_CHARS}]")


_SURROGATE = re.compile("[\ud800-\udfff]")
_LONGEST_KEY_CHARS = 256
"""Providers' keys are shorter: a key that begins before the cut ends within this many characters of it."""


def clean_text(value: object, max_chars: int) -> str | None:
    """``value`` as safe text of at most ``max_chars`` characters, or ``None`` when empty or not text.

    Lone surrogates (which JSON allows and UTF-8 does not) become U+FFFD, as everywhere in a record; control and format
    characters become ``\\xNN`` / ``\\uNNNN`` escapes. The cap applies before escaping, and
    again after, so the result never exceeds ``max_chars``.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if len(text) > max_chars:
        text = _cut(text, max_chars)
    if not text:
        return None
    if not text.isascii():
        text = _SURROGATE.sub("\ufffd", text)
    if _CONTROL.search(text) is not None:
        text = _CONTROL.sub(_escape, text)
        if len(text) > max_chars:
            text = _cut(text, max_chars)
    return text


def _cut(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars``, with the key-shaped text before the cut masked first: the cut would
    leave part of a key too short to be known as one."""
    if "sk-" not in text:
        return text[:max_chars]
    window = max_chars + _LONGEST_KEY_CHARS
    while True:  # masking shortens the text: what follows must still reach past the cut by a key's length
        head = without_key_shapes(text[:window])
        if window >= len(text) or len(head) >= max_chars + _LONGEST_KEY_CHARS:
            return head[:max_chars]
        window *= 2


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def header_text(value: str, max_chars: int) -> str | None:
    """A header value as safe text: HTTP carries bytes, which Starlette decodes as latin-1; UTF-8 is read back."""
    if not value.isascii():
        value = value.encode("latin-1", "replace").decode("utf-8", "replace")
    return clean_text(value, max_chars)
