"""WHERE clauses for the attribution filters: session, project, end user, key, client and tags.

Tags are JSON text; a tag is read with ``json_extract_string`` and a JSON path built from a
tag name that the API has already restricted to ``a-z 0-9 _ . -`` (and is bound as a parameter).
"""

from __future__ import annotations

from typing import Any

from ccproxy_core.plugin_host.log_store import LogFilters, NameFilter

_COLUMNS = (
    ("session_id", "session_id"),
    ("project", "project"),
    ("end_user", "end_user"),
    ("client_name", "client_name"),
)


def tag_path(name: str) -> str:
    """The JSON path of tag ``name`` inside the ``tags`` column."""
    return f'$."{name}"'


def attribution_clauses(filters: LogFilters, params: list[Any]) -> list[str]:
    """Clauses for the attribution parts of ``filters``; appends their values to ``params``."""
    clauses: list[str] = []
    for attribute, column in _COLUMNS:
        clauses += _name_clauses((column,), getattr(filters, attribute), params)
    clauses += _name_clauses(("api_key_id", "api_key_name"), filters.api_key_id, params)
    for name, value in filters.tags:
        clauses.append('json_extract_string("tags", ?) = ?')
        params += [tag_path(name), value]
    return clauses


def _name_clauses(columns: tuple[str, ...], name_filter: NameFilter, params: list[Any]) -> list[str]:
    """Like the model filter, over one column or (for keys) either of two."""
    clauses = []
    if name_filter.include:
        marks = ", ".join("?" for _ in name_filter.include)
        clauses.append("(" + " OR ".join(f'"{c}" IN ({marks})' for c in columns) + ")")
        for _ in columns:
            params.extend(name_filter.include)
    if name_filter.exclude:
        marks = ", ".join("?" for _ in name_filter.exclude)
        for column in columns:
            clauses.append(f'("{column}" IS NULL OR "{column}" NOT IN ({marks}))')
            params.extend(name_filter.exclude)
    return clauses
