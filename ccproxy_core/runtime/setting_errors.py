"""The line that names a bad setting and says what is wrong with it, without ever showing a secret.

pydantic names a bad value by its place in the settings and hands back the value given, and both
can hold a credential: the value of any field typed ``SecretStr`` (whatever its name says), and a
key pasted where ``[attribution.keys]`` wants a key's fingerprint, which is a place, not a value.
"""

from __future__ import annotations

import difflib
import math
from decimal import Decimal
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic_core import ErrorDetails

from ccproxy_core.accounting.attribution.keys import is_fingerprint
from ccproxy_core.safe_values import MASK, shown_setting_value

NOT_A_FINGERPRINT = "<not a key fingerprint>"
"""How an ``[attribution.keys]`` entry is named when its name is not a fingerprint: it may be a pasted key."""
_KEY_ENTRY_TAGS = {"STR", "KEYALIAS"}  # pydantic's names for the kinds of value an entry may be


def bad_setting_line(error: ErrorDetails, model: type[BaseModel], path: tuple[str, ...] = (), where: str = "") -> str:
    """``invalid setting NAME=VALUE: what is wrong`` for one error of validating ``model`` (its place
    prefixed with ``path``, a plugin's table), VALUE masked when the field is a secret; ``where`` follows
    VALUE (the place in a config file it was read from)."""
    location = [str(part).upper() for part in error["loc"] if not isinstance(part, int)]
    if location[:2] == ["ATTRIBUTION", "KEYS"] and len(location) > 2:
        entry = location[2] if is_fingerprint(location[2]) else NOT_A_FINGERPRINT
        location = ["ATTRIBUTION", "KEYS", entry, *(part for part in location[3:] if part not in _KEY_ENTRY_TAGS)]
    name = "__".join((*(part.upper() for part in path), *location)) or "settings"
    if error["type"] == "extra_forbidden":
        return unknown_key_line(name, model, [part for part in error["loc"] if isinstance(part, str)])
    value = error.get("input")
    if error["type"] == "missing":
        shown = "(missing)"
    elif isinstance(value, dict):
        shown = "(a table)"
    elif is_secret_field(model, [part for part in error["loc"] if isinstance(part, str)]):
        shown = repr(MASK)
    else:
        shown = shown_setting_value(name, value)
    message = "give a finite number" if _not_finite(error) else error["msg"]
    return f"invalid setting {name}={shown}{where}: {message}"


_BOUNDS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})


def _not_finite(error: ErrorDetails) -> bool:
    """Whether a bound was broken by ``nan`` or an infinity: no bound is what is wrong with those."""
    if error["type"] not in _BOUNDS:
        return False
    try:
        return not math.isfinite(float(error.get("input")))
    except (TypeError, ValueError):
        return False


def unknown_key_line(name: str, model: type[BaseModel], location: list[str]) -> str:
    """``unknown key KEY in TABLE: did you mean ...?`` for a key a table does not take (no value shown)."""
    table, _, key = name.rpartition("__")
    enclosing = _enclosing_model(model, location)
    known = list(enclosing.model_fields) if enclosing is not None else []
    close = difflib.get_close_matches(location[-1].lower(), known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"it takes {', '.join(known)}" if known else "remove it"
    return f"unknown key {key.lower()} in {table}: {hint}"


def _enclosing_model(model: type[BaseModel], location: list[str]) -> type[BaseModel] | None:
    """The model whose table holds the last part of ``location``."""
    current: Any = model
    for part in location[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            continue  # a dict entry or a union's tag: the same model goes on
        current = next((kind for kind in _kinds(fields[part].annotation) if _is_model(kind)), None)
        if current is None:
            return None
    return current


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def is_secret_field(model: type[BaseModel], location: list[str]) -> bool:
    """Whether a field on the way to ``location`` in ``model`` is typed ``SecretStr`` or ``SecretBytes``."""
    current: Any = model
    for part in location:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            continue  # a dict entry or a union's tag: the same model goes on
        annotation = fields[part].annotation
        kinds = _kinds(annotation)
        if kinds & {SecretStr, SecretBytes}:
            return True
        current = next((kind for kind in kinds if isinstance(kind, type) and issubclass(kind, BaseModel)), None)
        if current is None:
            return False
    return False


def _kinds(annotation: Any) -> set[Any]:
    """Every type named in ``annotation``: the members of a union, the values of a dict or list."""
    origin = get_origin(annotation)
    if origin is None:
        return {annotation}
    kinds: set[Any] = set() if origin in (Union, UnionType) else {origin}
    for argument in get_args(annotation):
        kinds |= _kinds(argument)
    return kinds


def infinite_setting(settings: BaseModel, path: tuple[str, ...] = ()) -> str | None:
    """The line naming a setting, ccproxy's or a plugin's, set to an infinity; ``None`` when there is none.

    pydantic takes ``inf`` for a float bounded only from below (``gt=0``), and an infinite time or
    interval breaks at its first use (an infinite connect timeout failed every request with a 500).
    """
    for name, value in settings:
        place = (*path, name)
        if isinstance(value, BaseModel):
            found = infinite_setting(value, place)
            if found is not None:
                return found
        elif isinstance(value, float | Decimal) and not math.isfinite(value):
            return f"invalid setting {'__'.join(place).upper()}={value}: give a finite number"
    return None
