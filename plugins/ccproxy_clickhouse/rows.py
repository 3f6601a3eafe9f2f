"""Conversions between access records, ClickHouse rows and the JSON-ready dicts readers get."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from ccproxy_core.accounting.record import ACCESS_LOG_COLUMNS, AccessRecord
from ccproxy_core.plugin_host.log_store import compact_json
from ccproxy_core.plugin_host.store_answers import datetime_to_micros, micros_to_datetime
from ccproxy_core.safe_values import MAX_USD

from .schema import JSON_COLUMNS, RECORD_COLUMN_TYPES, quote

# A record's costs are below MAX_USD (safe_values makes them so); Decimal(38, 12) would hold far more.
_MONEY_LIMIT = MAX_USD
_INT64_LIMIT = 2**63
_UINT8_COLUMNS = {name for name, sql_type in RECORD_COLUMN_TYPES if sql_type == "UInt8"}  # booleans
_MONEY_COLUMNS = {name for name, sql_type in RECORD_COLUMN_TYPES if "Decimal" in sql_type}

# ``timestamp`` is read as its exact microseconds; every other column as stored.
SELECT_LIST = ", ".join("timestamp_us" if name == "timestamp" else quote(name) for name in ACCESS_LOG_COLUMNS)
_TIMESTAMP_INDEX = ACCESS_LOG_COLUMNS.index("timestamp")


def _indexes(predicate: Callable[[str], bool]) -> tuple[int, ...]:
    return tuple(
        i for i, (name, sql_type) in enumerate(RECORD_COLUMN_TYPES) if name not in JSON_COLUMNS and predicate(sql_type)
    )


_all_fields = attrgetter(*ACCESS_LOG_COLUMNS)
_JSON_AT = tuple(ACCESS_LOG_COLUMNS.index(name) for name in JSON_COLUMNS)
_BOOL_AT = _indexes(lambda t: t == "UInt8")
_MONEY_AT = _indexes(lambda t: "Decimal" in t)
_FLOAT_AT = _indexes(lambda t: "Float" in t)
_INT_AT = _indexes(lambda t: "Int" in t and t != "UInt8")
_TEXT_AT = _indexes(lambda t: "String" in t)


def record_to_row(record: AccessRecord, instance: str, inserted_us: int) -> tuple[Any, ...]:
    """The values to insert for one record, in :data:`.schema.INSERT_COLUMNS` order.

    Raises ``ValueError`` for a record ClickHouse could not hold (the writer drops and counts it):
    text that is not valid UTF-8, a number that is not finite or does not fit its column.
    """
    values = list(_all_fields(record))
    for i in _BOOL_AT:
        values[i] = 1 if values[i] else 0
    for i in _MONEY_AT:
        if values[i] is not None and not (values[i].is_finite() and abs(values[i]) < _MONEY_LIMIT):
            raise ValueError(f"{ACCESS_LOG_COLUMNS[i]}={values[i]} does not fit a cost column (below {MAX_USD:,} USD)")
    for i in _FLOAT_AT:
        if values[i] is not None and not math.isfinite(values[i]):
            raise ValueError(f"{ACCESS_LOG_COLUMNS[i]} is not a finite number")
    for i in _INT_AT:
        if values[i] is not None and not -_INT64_LIMIT <= values[i] < _INT64_LIMIT:
            raise ValueError(f"{ACCESS_LOG_COLUMNS[i]}={values[i]} does not fit its integer column")
    for i in _TEXT_AT:
        if values[i] is not None:
            values[i].encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError) here, not mid-insert
    for i in _JSON_AT:
        values[i] = compact_json(values[i]) if values[i] else ""
        values[i].encode("utf-8")
    micros = datetime_to_micros(record.timestamp)
    values[_TIMESTAMP_INDEX] = record.timestamp
    return (*values, micros, micros_to_datetime(micros).date(), instance, inserted_us)


def row_to_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    """A row selected with :data:`SELECT_LIST` as the JSON-ready dict of ``AccessRecord.to_dict()``."""
    result = dict(zip(ACCESS_LOG_COLUMNS, row, strict=True))
    result["timestamp"] = micros_to_datetime(result["timestamp"]).isoformat()
    for name in JSON_COLUMNS:
        result[name] = json.loads(result[name]) if result[name] else {}
    for name in _UINT8_COLUMNS:
        result[name] = bool(result[name])
    for name in _MONEY_COLUMNS:
        if result[name] is not None:
            result[name] = float(result[name])
    return result


def row_to_record(row: tuple[Any, ...]) -> AccessRecord:
    """A row selected with :data:`SELECT_LIST` as the immutable record it was written from."""
    values = dict(zip(ACCESS_LOG_COLUMNS, row, strict=True))
    values["timestamp"] = micros_to_datetime(values["timestamp"])
    for name in JSON_COLUMNS:
        values[name] = json.loads(values[name]) if values[name] else {}
    for name in _UINT8_COLUMNS:
        values[name] = bool(values[name])
    return AccessRecord(**values)
