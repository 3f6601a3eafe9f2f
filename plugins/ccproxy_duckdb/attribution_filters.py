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
    ("api_key_id", "api_key_id"),  # fingerprints only: readers turn a key's name into its fingerprints
    ("client_name", "client_name"),
)


def tag_path(name: str) -> str:
    """The JSON path of tag ``name`` inside the ``tags`` column."""
    return f'$."{name}"'


def attribution_clauses(filters: LogFilters, params: list[Any]) -> list[str]:
    """Clauses for the attribution parts of ``filters``; appends their values to ``params``."""
    clauses: list[str] = []
    for attribute, column in _COLUMNS:
        clauses += _name_clauses(column, getattr(filters, attribute), params)
    for name, value in filters.tags:
        clauses.append('json_extract_string("tags", ?) = ?')
        params += [tag_path(name), value]
    return clauses


def _name_clauses(column: str, name_filter: NameFilter, params: list[Any]) -> list[str]:
    """Like the model filter: one of ``include`` (when given), none of ``exclude``."""
    clauses = []
    if name_filter.include:
        clauses.append(f'"{column}" IN ({", ".join("?" for _ in name_filter.include)})')
        params.extend(name_filter.include)
    if name_filter.exclude:
        clauses.append(f'("{column}" IS NULL OR "{column}" NOT IN ({", ".join("?" for _ in name_filter.exclude)}))')
        params.extend(name_filter.exclude)
    return clauses
