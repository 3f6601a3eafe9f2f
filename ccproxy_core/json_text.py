"""JSON from clients and providers: decoded fast when well formed, as leniently as ever otherwise."""

from __future__ import annotations

import json
from typing import Any

import orjson


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
