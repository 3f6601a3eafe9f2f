"""The ``model`` and ``stream`` fields of a multipart form request (audio transcriptions, image edits).

OpenAI's upload routes take ``multipart/form-data``: the model is a form field beside the file,
and the answer does not name it, so without it such a request could never be priced. Only the
parts' headers and the two small fields are looked at; the file parts are skipped by a C-speed
search for the next boundary, never copied or decoded.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

MAX_PARTS = 1024
"""Parts looked at before giving up (an upload has a handful; each costs one search)."""
MAX_HEAD_BYTES = 4096
"""A part's headers longer than this end the search."""
MAX_VALUE_BYTES = 256
"""A ``model`` value longer than this is not a model name."""

_DISPOSITION = re.compile(rb"(?im)^content-disposition(?P<space>[ \t]*):(?P<value>[^\r\n]*)")
# One of its parameters: a token (names are case-insensitive, RFC 2183), "=", then a quoted string (a
# backslash escapes a character), as RFC 7578 writes it, or a bare token, as form parsers also take it.
_PARAMETER = re.compile(rb'[ \t]*;[ \t]*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^ \t;"]*))')
_TOKEN = re.compile(rb"[!#$%&'*+\-.0-9A-Za-z^_`|~]+")
_BARE_LINE_END = re.compile(rb"\r(?!\n)|(?<!\r)\n")
# A part whose bytes are encoded (base64, quoted-printable: Go's mime decodes the latter, Python's form
# parsers both) holds another value than its bytes: its model is unknown rather than a name no one bills.
_TRANSFER_ENCODED = re.compile(rb"(?im)^content-transfer-encoding[ \t]*:(?![ \t]*(?:7bit|8bit|binary)[ \t]*\r?$)")


def form_model_and_stream(body: bytes | bytearray, boundary: bytes) -> tuple[str | None, bool]:
    """``model`` (a non-empty UTF-8 string) and ``stream == "true"`` of a multipart form body.

    The parts are those the content type's ``boundary`` delimits, as the provider reads them: a
    preamble before the first delimiter, whatever it holds, is no part, and a file's bytes that
    hold the boundary with more on its line are the file's (RFC 2046). ``(None, False)`` when the
    body holds no such delimiter. The model is ``None`` when it is given twice with different values
    (which copy a provider's form parser keeps is not documented, and a guess could price the request
    at the other model's price), when its part has a ``Content-Transfer-Encoding`` that changes its
    bytes, and when the parts were not read to the closing delimiter (more than :data:`MAX_PARTS`, a
    head over :data:`MAX_HEAD_BYTES`, a body cut short): a part not read may name another model. Whenever
    the model is unknown for these reasons or a part could be named otherwise, the stream is too (False);
    it is True only when every ``stream`` part holds exactly ``true``.
    """
    delimiter = b"\r\n--" + boundary
    if _delimits(body, len(delimiter) - 2) and body.startswith(delimiter[2:]):
        first, boundary_end = 0, len(delimiter) - 2
    else:
        first = _next(body, delimiter, 0)
        boundary_end = first + len(delimiter)
    if first < 0 or body.find(delimiter[2:], 0, first) >= 0 or body.startswith(b"--", boundary_end):
        return None, False  # a preamble holding the boundary (a form of bare LFs, say), or the form closed at once
    position = body.find(b"\r\n", first + 2) + 2  # past the delimiter's line (it may end in spaces)
    model, streams, models, closed, unsure = None, [], set(), False, False
    for _ in range(MAX_PARTS):
        head_end = _head_end(body, position)
        next_part = _next(body, delimiter, head_end + 4) if position >= 2 and head_end >= 0 else -1
        if next_part < 0:
            break
        head = bytes(body[position:head_end])
        name, sure = _field_name(head)
        # A close delimiter with more on its line ends the form for Starlette's parser, not for Go's mime;
        # a value that begins with the boundary is an empty one before another part for Go's mime alone.
        unsure = (
            unsure
            or not sure
            or body.find(delimiter + b"--", head_end + 4, next_part) >= 0
            or _opens_with_boundary(body, delimiter[2:], head_end + 4)
        )
        value = bytes(body[head_end + 4 : next_part])
        if name == b"model":
            models.add(model := None if _TRANSFER_ENCODED.search(head) else _text(value))
        elif name == b"stream":
            streams.append(value)
        position = next_part + len(delimiter)
        if body.startswith(b"--", position):
            closed = True
            break
        position = body.find(b"\r\n", position) + 2
    if not closed or unsure:
        return None, False
    # Go's mime keeps a field's first value; Python's parsers, the last: a stream is one they all see.
    return (model if len(models) == 1 else None), bool(streams) and all(value == b"true" for value in streams)


def _head_end(body: bytes | bytearray, position: int) -> int:
    """Where the headers of the part starting at ``position`` end (the blank line's CRLF pair); -1 if not
    within :data:`MAX_HEAD_BYTES`. A part may have no headers at all: its blank line comes first."""
    if body.startswith(b"\r\n", position):
        return position - 2
    return body.find(b"\r\n\r\n", position, position + MAX_HEAD_BYTES)


def query_names_a_field(query: bytes) -> bool:
    """Whether a URL query gives ``model`` or ``stream``: Go's ``Request.FormValue`` reads the query's value
    before the form's, Python's form parsers never look at it, so the model would be a guess."""
    if not query:
        return False
    return any(name in ("model", "stream") for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True))


def _next(body: bytes | bytearray, delimiter: bytes, start: int) -> int:
    """Where the next delimiter line begins at or after ``start``; -1 when there is none."""
    found = body.find(delimiter, start)
    while found >= 0 and not _delimits(body, found + len(delimiter)):
        found = body.find(delimiter, found + 1)
    return found


_DELIMITER_END = re.compile(rb"--[ \t]*(?:\r\n|\Z)|[ \t]*\r\n")
"""What ends a delimiter's line (RFC 2046): spaces, then the line's end; for the closing one, "--" first, and
the body may end there."""


def _opens_with_boundary(body: bytes | bytearray, dash_boundary: bytes, start: int) -> bool:
    """Whether the value at ``start`` begins with ``--boundary`` as Go's ``mime`` takes one at a body's start:
    followed by a space, a tab, a line's end, ``--`` or the body's end. Go's mime reads an empty value there
    and a part after it; Python's parsers read a value holding it."""
    end = start + len(dash_boundary)
    return body.startswith(dash_boundary, start) and (
        end == len(body) or body[end : end + 1] in b" \t\r\n" or body.startswith(b"--", end)
    )


def _delimits(body: bytes | bytearray, end: int) -> bool:
    """Whether the boundary that ends at ``end`` closes its line (spaces allowed) or the form (``--``)."""
    return _DELIMITER_END.match(body, end) is not None


def _field_name(head: bytes) -> tuple[bytes | None, bool]:
    """The ``name`` of a part that is a plain field (``None`` for a file or a part without one), from its
    headers, and whether every form parser reads it so. Not when the headers have a line ended by a
    bare CR or LF, or when the ``Content-Disposition`` is given twice (Go's ``mime`` reads the first,
    Starlette's parser the last), is of another kind than ``form-data``, goes on over a folded line,
    names the part or its file in RFC 2231's form or the part in RFC 2047's (or with a tick, where the
    new email policy looks for a charset), has a parameter twice, an empty ``filename`` (a field to Go's
    ``mime``, a file to Python's form parsers), a backslash in the name, an escaped one ending a quoted
    value (Python's old parser then counts the quotes otherwise), or anything Go's ``mime`` refuses (it
    then reads no parameter at all)."""
    if _BARE_LINE_END.search(head):
        return None, False  # Python's email ends a header line at a bare CR or LF, Go's mime and Starlette do not
    dispositions = list(_DISPOSITION.finditer(head))
    if not dispositions:
        return None, True
    after = head[dispositions[0].end() : dispositions[0].end() + 3]
    if len(dispositions) > 1 or after[2:] in (b" ", b"\t") or dispositions[0]["space"]:
        return None, False  # given twice, folded, or a space before its colon: parsers read it otherwise
    kind, separator, rest = dispositions[0]["value"].partition(b";")
    if kind.strip(b" \t").lower() != b"form-data":
        return None, False  # Python's form parsers read the name of a part of any kind
    parameters = _parameters(separator + rest)
    if parameters is None or any(name.startswith((b"name*", b"filename*")) for name in parameters):
        return None, False
    if b"filename" in parameters:  # a file named model is the model to Starlette's parser, if it comes last
        return None, parameters[b"filename"] != b"" and parameters.get(b"name") != b"model"
    name = parameters.get(b"name")
    if name is not None and (b"\\" in name or b"=?" in name or b"'" in name):
        return None, False
    return name, True


def _parameters(text: bytes) -> dict[bytes, bytes] | None:
    """A disposition's parameters as written (quoted values not unescaped); ``None`` when the list is
    not read alike by every parser."""
    parameters: dict[bytes, bytes] = {}
    position = 0
    while (match := _PARAMETER.match(text, position)) is not None:
        name, quoted, token = match[1].lower(), match[2], match[3]
        if name in parameters or (quoted.endswith(b"\\") if quoted is not None else not _TOKEN.fullmatch(token)):
            return None
        parameters[name] = quoted if quoted is not None else token
        position = match.end()
    return parameters if text[position:].strip(b" \t") in (b"", b";") else None


def _text(value: bytes) -> str | None:
    if not value or len(value) > MAX_VALUE_BYTES:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None
