"""Making a value that came from a client safe to store: valid UTF-8, no control characters, bounded."""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls and the Unicode line and paragraph separators: a log viewer,
# terminal or JavaScript source must never receive one raw.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean_text(value: object, max_chars: int) -> str | None:
    """``value`` as safe text of at most ``max_chars`` characters, or ``None`` when empty or not text.

    Lone surrogates (which JSON allows and UTF-8 does not) become ``?``; control characters
    become ``\\xNN`` escapes. The cap applies before escaping, and again after, so the result
    never exceeds ``max_chars``.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()[:max_chars]
    if not text:
        return None
    if not text.isascii():
        text = text.encode("utf-8", "replace").decode("utf-8")
    if _CONTROL.search(text) is not None:
        text = _CONTROL.sub(_escape, text)[:max_chars]
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def header_text(value: str, max_chars: int) -> str | None:
    """A header value as safe text: HTTP carries bytes, which Starlette decodes as latin-1; UTF-8 is read back."""
    if not value.isascii():
        value = value.encode("latin-1", "replace").decode("utf-8", "replace")
    return clean_text(value, max_chars)
