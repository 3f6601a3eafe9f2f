"""Conversions between access records, DuckDB rows and the JSON-ready dicts readers get."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from operator import attrgetter
from typing import Any

import orjson

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.plugin_host.log_store import compact_json
from ccproxy_core.plugin_host.store_answers import micros_to_datetime

from .schema import COLUMNS, JSON_COLUMNS, MONEY_COLUMNS

_RATE_LIMITS = COLUMNS.index("rate_limits")
_fields_before = attrgetter(*COLUMNS[:_RATE_LIMITS])  # rate_limits becomes JSON text
_TAGS = COLUMNS.index("tags")
_fields_between = attrgetter(*COLUMNS[_RATE_LIMITS + 1 : _TAGS])  # up to tags, the other JSON column
assert COLUMNS[_TAGS + 1 :] == ("finish_reason",)
# Money goes to DuckDB as text: it rounds and refuses exactly as it does a Decimal, at a third of the cost.
_MONEY_INDEXES = tuple(COLUMNS.index(name) for name in MONEY_COLUMNS)

# Timestamps are read as integer microseconds: exact (the page cursor needs that) and
# independent of the session time zone, and DuckDB's TIMESTAMPTZ -> datetime needs pytz.
SELECT_LIST = ", ".join('epoch_us("timestamp")' if name == "timestamp" else f'"{name}"' for name in COLUMNS)


def record_to_row(record: AccessRecord) -> tuple[Any, ...]:
    """The values to append for one record, in column order."""
    rate_limits = _json_text(record.rate_limits) if record.rate_limits else None
    tags = _json_text(record.tags) if record.tags else None
    row = [*_fields_before(record), rate_limits, *_fields_between(record), tags, record.finish_reason]
    for index in _MONEY_INDEXES:
        if row[index] is not None:
            row[index] = str(row[index])
    return tuple(row)


def _json_text(value: Mapping[str, Any]) -> str:
    """``value`` as JSON text: orjson's, a sixth of the cost of ``json``'s for a dozen rate limits.

    DuckDB reads the column as JSON (``json_extract_string``, ``json.loads``), never as text, so
    orjson's UTF-8 where ``json`` writes ``\\u`` escapes reads the same. What orjson refuses (text
    with a lone surrogate) gets ``json``'s text, as before.
    """
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return compact_json(value)


def row_to_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row selected with :data:`SELECT_LIST` as the JSON-ready dict of ``AccessRecord.to_dict()``."""
    result = dict(zip(COLUMNS, row, strict=True))
    result["timestamp"] = micros_to_datetime(result["timestamp"]).isoformat()
    for name in JSON_COLUMNS:
        result[name] = _json_dict(result[name])
    for name, value in result.items():
        if isinstance(value, Decimal):
            result[name] = float(value)
    return result


def _json_dict(raw: str | None) -> Any:
    """A stored JSON column as a value; text that is not JSON (never written by ccproxy) reads as ``{}``."""
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}
