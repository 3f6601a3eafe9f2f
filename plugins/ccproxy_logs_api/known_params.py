"""Refuse query parameters a /logs route does not take, and parameters given twice.

A misspelt filter (``?modle=x``) would otherwise be ignored and answer with every record, which
reads as the filtered answer; of a repeated one (``?model=a&model=b``) only the last would count. Each route's parameters are read once from its declaration.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from .attribution_params import TAG_PREFIX, attribution_params
from .params import param_error

# By the route's operation id: the same in every app built in one process (tests build many), and
# bounded by the routes of this module.
_known: dict[str, tuple[frozenset[str], bool]] = {}


def refuse_unknown_params(request: Request) -> None:
    """FastAPI dependency: 422 naming the first query parameter the matched route does not declare,
    or that is given twice (``tag.<name>`` filters may repeat: each must hold)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not request.query_params:
        return
    declared = _known.get(route.unique_id)
    if declared is None:
        declared = _known[route.unique_id] = _declared(route.dependant)
    known, takes_tags = declared
    seen: set[str] = set()
    for name, value in request.query_params.multi_items():
        is_tag = takes_tags and name.startswith(TAG_PREFIX)
        if name not in known and not is_tag:
            expected = ", ".join(sorted(known)) or "none"
            raise param_error(name, f"is not a parameter of {route.path} (it takes: {expected})", value)
        if name in seen and not is_tag:  # only the last would count: an answer that reads as filtered by both
            raise param_error(
                name, "is given more than once: give it once (to filter by several values, one comma list: a,b)", value
            )
        seen.add(name)


def _declared(dependant: Dependant) -> tuple[frozenset[str], bool]:
    """The route's query parameter names, and whether it takes ``tag.<name>`` filters."""
    names: set[str] = set()
    takes_tags = False
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(field.alias for field in current.query_params)
        takes_tags = takes_tags or current.call is attribution_params
        pending.extend(current.dependencies)
    return frozenset(names), takes_tags
