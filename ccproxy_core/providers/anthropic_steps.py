"""Which of an Anthropic answer's steps wrote its one-hour cache entries, when the steps do not say.

Each step of ``usage.iterations`` may carry its own ``cache_creation`` split; when none does, the
answer's own split still tells how many of its cache writes last an hour. A one-hour write costs
more than a five-minute one, so that count is never dropped. It settles which step wrote them when
no step, every step or a single step wrote cache entries; otherwise the bill cannot be known.
"""

from __future__ import annotations

from collections.abc import Sequence

from ccproxy_core.accounting.usage import Usage


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
