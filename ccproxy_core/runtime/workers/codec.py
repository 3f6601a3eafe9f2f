"""Request contexts, access records and admissions as JSON-ready dicts, and back, exactly.

``AccessRecord.to_dict`` turns money into floats for people; between processes every value
must come back as it was, so Decimals travel as strings and datetimes in ISO form.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.plugin_host.admission import Admission


def _fields_of(cls: type, type_name: str) -> frozenset[str]:
    return frozenset(f.name for f in dataclasses.fields(cls) if type_name in str(f.type))


_RECORD_DECIMALS = _fields_of(AccessRecord, "Decimal")
_RECORD_DATETIMES = _fields_of(AccessRecord, "datetime")
_CONTEXT_DATETIMES = _fields_of(RequestContext, "datetime")
_CONTEXT_FIELDS = tuple(f.name for f in dataclasses.fields(RequestContext) if f.name != "state")


def context_to_wire(context: RequestContext) -> dict[str, Any]:
    """The context's fields, without ``state`` (which belongs to the process that runs the plugins)."""
    wire = {name: getattr(context, name) for name in _CONTEXT_FIELDS}
    for name in _CONTEXT_DATETIMES:
        wire[name] = wire[name].isoformat()
    return wire


def context_from_wire(wire: dict[str, Any]) -> RequestContext:
    """A fresh context (empty ``state``) equal to the one sent."""
    values = {name: wire[name] for name in _CONTEXT_FIELDS if name in wire}
    for name in _CONTEXT_DATETIMES:
        values[name] = datetime.fromisoformat(values[name])
    return RequestContext(**values)


def record_to_wire(record: AccessRecord) -> dict[str, Any]:
    """Every field of the record; Decimals as strings, datetimes in ISO form."""
    wire = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    for name in _RECORD_DECIMALS:
        if wire[name] is not None:
            wire[name] = str(wire[name])
    for name in _RECORD_DATETIMES:
        wire[name] = wire[name].isoformat()
    return wire


def record_from_wire(wire: dict[str, Any]) -> AccessRecord:
    """The record that was sent, field for field."""
    values = dict(wire)
    for name in _RECORD_DECIMALS:
        if values.get(name) is not None:
            values[name] = Decimal(values[name])
    for name in _RECORD_DATETIMES:
        values[name] = datetime.fromisoformat(values[name])
    return AccessRecord(**values)


def context_of_record(record: AccessRecord) -> RequestContext:
    """A context rebuilt from a record, for an end whose start never arrived."""
    values = {name: getattr(record, name) for name in _CONTEXT_FIELDS if hasattr(record, name)}
    return RequestContext(started_at=record.timestamp, started_monotonic=0.0, **values)


def admissions_to_wire(answers: list[Admission]) -> list[dict[str, Any]]:
    return [
        {
            "refuse_status": a.refuse_status,
            "error_type": a.error_type,
            "message": a.message,
            "headers": [list(pair) for pair in a.headers],
        }
        for a in answers
    ]


def admissions_from_wire(wire: list[dict[str, Any]]) -> list[Admission]:
    return [
        Admission(
            refuse_status=a["refuse_status"],
            error_type=a["error_type"],
            message=a["message"],
            headers=tuple((name, value) for name, value in a["headers"]),
        )
        for a in wire
    ]
