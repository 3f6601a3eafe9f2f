"""Which of an Anthropic answer's steps wrote its one-hour cache entries, when the steps do not say.

Each step of ``usage.iterations`` may carry its own ``cache_creation`` split; when none does, the
answer's own split still tells how many of its cache writes last an hour. A one-hour write costs
more than a five-minute one, so that count is never dropped. It settles which step wrote them when
no step, every step or a single step wrote cache entries; otherwise the bill cannot be known. When
some steps have a split, the answer's count may hold theirs too: it goes to the others only when it
is 0 or they wrote nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from ccproxy_core.accounting.usage import Usage


def settle_one_hour_writes(steps: Sequence[Usage], one_hour: int | None) -> bool:
    """Give the steps without a split of their own their part of the answer's ``one_hour`` writes (``None``:
    the answer gave no split); False when that does not settle which steps wrote them."""
    unsplit = [step for step in steps if step.cache_write_1h_tokens is None]
    if one_hour is None or not unsplit:
        return True
    if len(unsplit) < len(steps) and one_hour and any(step.cache_write_tokens for step in unsplit):
        return False
    return share_one_hour_writes(unsplit, one_hour)


def one_hour_writes_of(steps: Sequence[Usage]) -> int:
    """The steps' one-hour writes, each step's at most its own writes (as each is priced)."""
    return sum(min(step.cache_write_1h_tokens or 0, step.cache_write_tokens or 0) for step in steps)


def share_one_hour_writes(steps: Sequence[Usage], one_hour: int) -> bool:
    """Give ``steps``, none of which has a split, the answer's ``one_hour`` writes; False when unsettled."""
    writing = [step for step in steps if step.cache_write_tokens]
    written = sum(step.cache_write_tokens or 0 for step in writing)
    if one_hour not in (0, written) and len(writing) != 1:
        return False  # several steps wrote, some for an hour: which ones, the answer does not say
    left = one_hour
    for step in writing:
        step.cache_write_1h_tokens = min(left, step.cache_write_tokens or 0)
        left -= step.cache_write_1h_tokens
    return True
