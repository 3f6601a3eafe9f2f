"""Whether genai-prices found a model by a prefix that the model id only shares.

genai-prices matches model ids by prefix (``claude-opus-4-1`` for ``claude-opus-4-1-20250805``), so an
id that carries the prefix's version number on (``claude-opus-4-10``, ``claude-opus-4-50``) would be
priced as the older model: a cost no invoice shows. Such an id is unknown instead, and unpriced. A
date after the prefix (``claude-sonnet-4-2025`` and ``0514``, ``ft:gpt-4-0`` and ``613``) makes a run
of four digits or more, a snapshot of the same model, and matches as before.
"""

from __future__ import annotations

import re
from typing import Any

from genai_prices.types import ClauseOr, ClauseStartsWith

_DIGITS_AT_END = re.compile(r"\d+$")
_DIGITS = re.compile(r"\d+")
_SHORTEST_DATE = 4
"""Digits of the shortest date in a snapshot's id (OpenAI's ``0613``)."""


def another_version(match: Any, model: str) -> bool:
    """Whether ``model`` meets the clauses ``match`` only as a longer version number of a prefix."""
    prefixes = []
    for clause in _clauses(match):
        if clause.is_match(model):
            if not isinstance(clause, ClauseStartsWith):
                return False  # matched as itself (an equal name, a pattern): the model it names
            prefixes.append(clause.starts_with)
    return bool(prefixes) and all(_number_goes_on(prefix, model) for prefix in prefixes)


def _clauses(match: Any) -> list[Any]:
    if isinstance(match, ClauseOr):
        return [clause for part in match.or_ for clause in _clauses(part)]
    return [match]


def _number_goes_on(prefix: str, model: str) -> bool:
    ending = _DIGITS_AT_END.search(prefix)
    more = _DIGITS.match(model, len(prefix))
    return ending is not None and more is not None and len(ending[0]) + len(more[0]) < _SHORTEST_DATE
