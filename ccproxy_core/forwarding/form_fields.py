"""The ``model`` and ``stream`` fields of a multipart form request (audio transcriptions, image edits).

OpenAI's upload routes take ``multipart/form-data``: the model is a form field beside the file,
and the answer does not name it, so without it such a request could never be priced. Only the
parts' headers and the two small fields are looked at; the file parts are skipped by a C-speed
search for the next boundary, never copied or decoded.
"""

from __future__ import annotations

import re

MAX_PARTS = 64
"""Parts looked at before giving up (an upload has a handful)."""
MAX_HEAD_BYTES = 4096
"""A part's headers longer than this end the search."""
MAX_VALUE_BYTES = 256
"""A ``model`` value longer than this is not a model name."""

_DISPOSITION = re.compile(rb"(?im)^content-disposition[ \t]*:[ \t]*form-data[ \t]*;([^\r\n]*)")
_NAME = re.compile(rb'(?:^|;)[ \t]*name="([^"]*)"')
_FILENAME = re.compile(rb"(?:^|;)[ \t]*filename\*?=")


def form_model_and_stream(body: bytes | bytearray) -> tuple[str | None, bool]:
    """``model`` (a non-empty UTF-8 string) and ``stream == "true"`` of a multipart form body.

    ``(None, False)`` for a body that is not a multipart form (its first line is its boundary).
    """
    first_line_end = body.find(b"\r\n", 0, 80)  # a boundary has at most 70 characters
    if not body.startswith(b"--") or first_line_end < 3:
        return None, False
    delimiter = b"\r\n" + bytes(body[:first_line_end])
    model, streaming, position = None, False, first_line_end + 2
    for _ in range(MAX_PARTS):
        head_end = body.find(b"\r\n\r\n", position, position + MAX_HEAD_BYTES)
        next_part = body.find(delimiter, head_end + 4) if head_end >= 0 else -1
        if next_part < 0:
            break
        name = _field_name(bytes(body[position:head_end]))
        value = bytes(body[head_end + 4 : next_part])
        if name == b"model":
            model = _text(value)
        elif name == b"stream":
            streaming = value.strip() == b"true"
        position = next_part + len(delimiter)
        if body.startswith(b"--", position):  # the closing delimiter
            break
        position += 2
    return model, streaming


def _field_name(head: bytes) -> bytes | None:
    """The ``name`` of a part that is a plain field (not a file), from its headers."""
    disposition = _DISPOSITION.search(head)
    if disposition is None or _FILENAME.search(disposition[1]):
        return None
    name = _NAME.search(disposition[1])
    return name[1] if name else None


def _text(value: bytes) -> str | None:
    if not value or len(value) > MAX_VALUE_BYTES:
        return None
    try:
        return value.decode()
    except UnicodeDecodeError:
        return None
