"""Label values that stay bounded, whatever clients send.

Every distinct label value is a new time series in Prometheus; a client that invents a
model name per request must not be able to grow the exposition without limit.
"""

from __future__ import annotations

UNKNOWN = "unknown"
OTHER = "other"

# HTTP methods a proxied route can see, and WEBSOCKET (one answer on a forwarded WebSocket);
# anything else is folded into "other".
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "WEBSOCKET"})


class CappedLabel:
    """Hands out at most ``cap`` distinct values as themselves, then ``other``.

    The first ``cap`` distinct values seen keep their own label for the life of the
    app; a missing value (``None``) is ``unknown`` and does not use up the cap, nor do the
    values of ``always``, which keep their own label whatever came before (alert rules name them).
    """

    __slots__ = ("cap", "_admitted")

    def __init__(self, cap: int, always: tuple[str, ...] = ()) -> None:
        self._admitted: set[str] = set(always)
        self.cap = cap + len(self._admitted)  # ``always`` uses up none of it

    def __call__(self, value: str | None) -> str:
        """The label to use for ``value``."""
        if value is None:
            return UNKNOWN
        if value in self._admitted:
            return value
        if len(self._admitted) < self.cap and _fit_for_a_label(value):
            self._admitted.add(value)
            return value
        return OTHER


class CappedCombination:
    """Hands out at most ``cap`` distinct combinations of label values as themselves, then all ``other``.

    Capping each label alone still lets ``cap`` projects times ``cap`` clients make ``cap**2``
    series; this bounds the combinations too. The first ``cap`` combinations seen keep their
    labels for the life of the app; one made only of ``unknown`` and ``other`` does not use up
    the cap (there are at most four such with two labels).
    """

    __slots__ = ("cap", "_admitted")

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._admitted: set[tuple[str, ...]] = set()

    def __call__(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """The labels to use for ``values`` (each already capped alone)."""
        if values in self._admitted or all(value in (UNKNOWN, OTHER) for value in values):
            return values
        if len(self._admitted) < self.cap:
            self._admitted.add(values)
            return values
        return (OTHER,) * len(values)


def method_label(method: str) -> str:
    """The request method as a label: one of the standard methods, else ``other``."""
    return method if method in KNOWN_METHODS else OTHER


def split_rate_limit_key(key: str) -> tuple[str, str] | None:
    """``"input_tokens_remaining"`` -> ``("input_tokens", "remaining")``; ``None`` for other keys."""
    resource, _, kind = key.rpartition("_")
    if resource and kind in ("limit", "remaining"):
        return resource, kind
    return None


MAX_LABEL_CHARS = 256


def _fit_for_a_label(value: str) -> bool:
    """A value that renders in the exposition as given: printable, valid UTF-8, bounded.

    Records arrive with safe values; this keeps one bad value from breaking every later
    scrape should one ever slip through (it is folded into ``other`` instead).
    """
    return len(value) <= MAX_LABEL_CHARS and value.isprintable()
