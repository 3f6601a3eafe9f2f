"""The boundary of a ``multipart/form-data`` request, read from its ``Content-Type`` as the provider reads it.

A boundary read otherwise than the provider's form parser reads it delimits other parts, and so may
find another (cheaper) model. Where Go's ``mime`` and Python's ``email`` could read the parameters
differently, there is no boundary: the request's model is unknown rather than guessed.
"""

from __future__ import annotations

import re
import urllib.parse

MEDIA_TYPE = "multipart/form-data"
# One parameter: a token, "=" (spaces around it allowed, as Go's mime and Python's email read it), then
# a token or a quoted string, whose backslash escapes a character. Anything else ends the list.
_PARAMETER = re.compile(r'\s*;\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]*))')
_ESCAPED = re.compile(r"\\(.)")
# RFC 2231: ``boundary*`` holds ``charset'language'value``; ``boundary*N`` is the Nth piece of a value cut
# into pieces, and ``boundary*N*`` a piece that is percent-escaped (the first of them with the charset).
_PIECE_NAME = re.compile(r"boundary\*(?:0|[1-9][0-9]?)\*?")
_BROKEN_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
# The characters of an unquoted value that Go's mime takes as a token and both of Python's email policies
# read whole ("ab:cd", "abc*" and "''abc" are each cut or read otherwise by the new policy).
_TOKEN = re.compile(r"[!#$%&+\-.0-9A-Za-z^_`{|}~]+")
# RFC 2046's boundary characters, as a quoted boundary may hold them: Python's email reads other quoted
# values otherwise ("<a>" as "a", a backslash's escape by policy).
_BOUNDARY_CHARS = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]+")
_ESCAPED_PIECE = re.compile(r"[!#$%&'+\-.0-9A-Za-z^_`{|}~]+")
_GO_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Za-z^_`{|}~]+")
_PLAIN_PIECE = re.compile(r"\s*;\s*[^=\s]+=[^\s\"]*")
_CHARSETS = frozenset({"utf-8", "us-ascii"})
_MAX_PIECES = 70
"""A boundary has 70 characters at most, and each piece holds one at least."""
_MAX_PIECE_CHARS = 3 * 70 + 64
"""Each of 70 characters escaped, after a charset and a language."""


def form_boundary(content_type: str | None) -> bytes | None:
    """The ``boundary`` parameter of a ``multipart/form-data`` content type; ``None`` for any other, and
    when the parameters do not name one boundary of 1 to 70 characters (RFC 2046) beyond doubt."""
    if not content_type or content_type[: len(MEDIA_TYPE)].lower() != MEDIA_TYPE:
        return None
    boundaries: list[str] = []
    pieces: dict[str, str] = {}
    position = len(MEDIA_TYPE)
    while (match := _PARAMETER.match(content_type, position)) is not None:
        name, value = match[1].lower(), match[3] if match[2] is None else _ESCAPED.sub(r"\1", match[2])
        if not _read_alike(name, match):
            return None
        if name == "boundary":
            boundaries.append(value)
        elif name.startswith("boundary*"):
            if name in pieces or len(pieces) >= _MAX_PIECES or len(value) > _MAX_PIECE_CHARS:
                return None  # Go's mime refuses a parameter given twice; the others hold no boundary
            pieces[name] = value
        position = match.end()
    if content_type[position:].strip(" \t;") or (pieces and boundaries):
        return None  # a list ccproxy cannot read, or read as the provider surely does
    boundary = _extended_boundary(pieces) if pieces else boundaries[0] if len(boundaries) == 1 else None
    if boundary is None or not 0 < len(boundary) <= 70 or not boundary.isascii():
        return None
    if boundary != boundary.rstrip():
        return None  # Python's email drops spaces at its end, Go's mime keeps them (RFC 2046 allows none)
    if "=?" in boundary:
        return None  # the new email policy decodes an RFC 2047 encoded word ("=?utf-8?q?abc?=" is "abc")
    return boundary.encode("ascii")


def _read_alike(name: str, match: re.Match[str]) -> bool:
    """Whether Go's ``mime`` and Python's ``email`` (either policy) read a parameter alike: an unquoted
    value that is a token (Go refuses the whole list otherwise; the new email policy ends the value, or
    the list, at such a character), a boundary's of the characters all three read whole; a quoted
    boundary of RFC 2046's boundary characters, any other quoted value without an escaped backslash; an
    RFC 2231 piece unquoted, without spaces around its ``=``, and with ticks only where a charset may
    stand (the new email policy looks for one in a plain piece too)."""
    quoted = match[2]
    if quoted is not None:  # an escaped backslash misleads Python's old parser, which counts quotes naively
        if name != "boundary":
            return not name.startswith("boundary*") and "\\\\" not in quoted
        return _BOUNDARY_CHARS.fullmatch(quoted) is not None
    if not name.startswith("boundary"):
        return _GO_TOKEN.fullmatch(match[3]) is not None or not match[3]
    if name == "boundary":
        return _TOKEN.fullmatch(match[3]) is not None
    allowed = _ESCAPED_PIECE if name.endswith("*") else _TOKEN
    return _PLAIN_PIECE.fullmatch(match[0]) is not None and allowed.fullmatch(match[3]) is not None


def _extended_boundary(pieces: dict[str, str]) -> str | None:
    """A boundary in RFC 2231's form (``boundary*=utf-8''abc``, or in pieces ``boundary*0=ab; boundary*1=c``);
    ``None`` unless its pieces are numbered from 0 without a gap, its charset is UTF-8 or US-ASCII and its
    escapes are whole: where Go's ``mime`` and Python's ``email`` read the same value."""
    if "boundary*" in pieces:
        return _unescaped(pieces["boundary*"], first=True) if len(pieces) == 1 else None
    if not all(map(_PIECE_NAME.fullmatch, pieces)):
        return None
    values = []
    for number in range(len(pieces)):
        plain, escaped = pieces.get(f"boundary*{number}"), pieces.get(f"boundary*{number}*")
        if (plain is None) == (escaped is None):
            return None  # a gap in the numbering, or the same piece both ways
        if number > 0 and escaped is not None and "boundary*0" in pieces:
            return None  # Python's email then looks for a charset in the joined value, Go's mime does not
        value = plain if escaped is None else _unescaped(escaped, first=number == 0)
        if value is None:
            return None
        values.append(value)
    return "".join(values)


def _unescaped(value: str, *, first: bool) -> str | None:
    """A percent-escaped piece's text; the first piece begins with ``charset'language'``."""
    if first:
        charset, tick, rest = value.partition("'")
        _language, tick2, value = rest.partition("'")
        if not (tick and tick2) or charset.lower() not in _CHARSETS:
            return None
    if _BROKEN_ESCAPE.search(value) or "'" in value:
        return None  # a tick past the charset's: the new email policy reads the pieces' ticks once joined
    try:
        return urllib.parse.unquote_to_bytes(value).decode()
    except UnicodeDecodeError:
        return None
