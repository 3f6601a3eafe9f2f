"""Request hooks called without pluggy's machinery: each implementation with its own arguments, in pluggy's order."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pluggy

Direct = tuple[tuple[Callable[..., Any], Callable[[tuple[Any, ...]], tuple[Any, ...]]], ...]
"""Each implementation, and what picks its arguments from the hook's, as a tuple."""


def direct_calls(pm: pluggy.PluginManager, caller: Any, order: tuple[str, ...]) -> Direct | None:
    """``(function, picker)`` in call order (``order``: the hook's arguments), or ``None`` when pluggy's own call
    is needed. A picker is an ``itemgetter`` of the function's arguments: 0.6 µs for three plugins, where
    building each one's list from a dict of the arguments took 1.2."""
    if pm._inner_hookexec is not _PLAIN_HOOKEXEC:
        return None  # tracing wraps pluggy's call
    impls = caller.get_hookimpls()
    if any(impl.wrapper or impl.hookwrapper or impl.kwargnames or set(impl.argnames) - set(order) for impl in impls):
        return None
    return tuple((impl.function, _picker([order.index(name) for name in impl.argnames])) for impl in reversed(impls))


def _picker(indexes: list[int]) -> Callable[[tuple[Any, ...]], tuple[Any, ...]]:
    if len(indexes) > 1:
        return operator.itemgetter(*indexes)
    return lambda arguments: tuple(arguments[index] for index in indexes)  # itemgetter gives one value, not a tuple


_PLAIN_HOOKEXEC = pluggy.PluginManager("probe")._inner_hookexec
