"""The ``[[budgets]]`` tables of the config file, and errors that say which budget is wrong."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError, field_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from ccproxy_core.accounting.attribution import MAX_PROJECT_CHARS
from ccproxy_core.accounting.attribution.keys import is_fingerprint
from ccproxy_core.accounting.attribution.sessions import MAX_ID_CHARS

_BUDGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
BUDGET_SCOPE_KINDS = ("project", "api_key", "session", "model")
_LONGEST_KEPT = {"project": MAX_PROJECT_CHARS, "session": MAX_ID_CHARS}
BUDGET_ERROR = "budget_setting"
"""The error type of a bad budget; its context holds the budget's ``name`` and the pydantic ``error`` type."""


MIN_LIMIT_USD = 0.000001
MAX_LIMIT_USD = 1e12


class BudgetSettings(BaseModel):
    """One ``[[budgets]]`` table of the config file: a spending limit over a calendar period."""

    # A misspelt key would otherwise be dropped: "scop" would leave a project budget covering everyone.
    model_config = ConfigDict(extra="forbid")

    name: str
    """Letters, digits, ``_ . -``; shown in headers, metrics and notices."""
    scope: str = "all"
    """``all``, or ``project:<name>``, ``api_key:<id>``, ``session:<id>``, ``model:<name>``."""
    period: Literal["day", "week", "month"] = "day"
    """The calendar period the limit applies to; weeks start on Monday."""
    timezone: str = "UTC"
    """IANA time zone in which periods start and end (``Europe/Paris``)."""
    limit_usd: StrictFloat = Field(gt=0)
    """US dollars per period, from a millionth (the finest amount shown) to a trillion."""
    action: Literal["block", "warn"] = "block"
    """``block``: refuse requests once spent; ``warn``: let them through with a header, a log line and a metric."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _BUDGET_NAME.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        return value

    @field_validator("scope")
    @classmethod
    def _scope(cls, value: str) -> str:
        kind, _, target = value.partition(":")
        if value != "all" and (kind not in BUDGET_SCOPE_KINDS or not target):
            raise ValueError("must be all, project:<name>, api_key:<id>, session:<id> or model:<name>")
        if kind == "api_key":
            if not is_fingerprint(target):
                # Compared with fingerprints: a key here would cover nothing, and be shown in metrics and alerts.
                raise ValueError("api_key: takes the key's fingerprint as `ccproxy key-id` prints it, never the key")
            return f"api_key:{target.lower()}"  # fingerprints are written in lower case
        if not target.isprintable():
            raise ValueError("must be printable: no control characters")
        if target != target.strip():  # HTTP strips them from a header's value: it could never match
            raise ValueError("must not begin or end with a space")
        if kind in _LONGEST_KEPT and len(target) > _LONGEST_KEPT[kind]:
            raise ValueError(
                f"names a {kind} longer than the {_LONGEST_KEPT[kind]} characters a request's {kind} is kept to: "
                "it could never match"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone such as UTC or Europe/Paris") from None
        if value == "localtime":  # the host's own zone, whatever it is set to: not one a reader can see
            raise ValueError("must be an IANA time zone such as UTC or Europe/Paris, not the host's localtime")
        return value

    @field_validator("limit_usd", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("must be a finite number of dollars")
        return value

    @field_validator("limit_usd")
    @classmethod
    def _within_reach(cls, value: float) -> float:
        # Below a millionth a refusal would read "0.00 USD"; far above a trillion, what is left of it
        # no longer fits the exact decimal arithmetic spend is counted in.
        if not MIN_LIMIT_USD <= value <= MAX_LIMIT_USD:
            raise ValueError("must be from 0.000001 to 1000000000000 (a trillion) dollars")
        return value


def validate_budgets(value: Any, handler: Callable[[Any], list[BudgetSettings]]) -> list[BudgetSettings]:
    """Validate the list of budgets, names unique; each error's context names the budget it is about.

    pydantic locates an error by the budget's index only, and a reader of the error line
    knows the budget by its name.
    """
    try:
        budgets = handler(value)
    except ValidationError as exc:
        raise _named_errors(value, exc.errors()) from None
    seen: set[str] = set()
    for index, budget in enumerate(budgets):
        if budget.name in seen:
            message = "Value error, an earlier budget has this name: every budget needs a name of its own"
            raise _named_errors(
                value, [{"loc": (index, "name"), "input": budget.name, "msg": message, "type": "value_error"}]
            )
        seen.add(budget.name)
    return budgets


def _named_errors(budgets: Any, errors: Iterable[Mapping[str, Any]]) -> ValidationError:
    details = [
        InitErrorDetails(
            type=PydanticCustomError(
                BUDGET_ERROR,
                "{message}",
                {"message": error["msg"], "error": error["type"], "name": _name_at(budgets, error["loc"])},
            ),
            loc=error["loc"],
            input=error["input"],
        )
        for error in errors
    ]
    return ValidationError.from_exception_data("budgets", details)


def _name_at(budgets: Any, loc: tuple[int | str, ...]) -> str | None:
    index = loc[0] if loc else None
    if not isinstance(budgets, list | tuple) or not isinstance(index, int) or not 0 <= index < len(budgets):
        return None
    entry = budgets[index]
    name = entry.get("name") if isinstance(entry, dict) else getattr(entry, "name", None)
    return name if isinstance(name, str) else None
