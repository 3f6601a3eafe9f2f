"""OpenAI's data residency endpoints, and the models they bill above the list price.

A project with data residency (or a request sent to a region on purpose) is served from a
regional host: ``us.api.openai.com``, ``eu.api.openai.com``, ``jp.api.openai.com`` and the
like. There, models released on or after 5 March 2026 cost 10% more than the list price
(https://developers.openai.com/api/docs/guides/data-residency). The answer does not say where
it was served, so the base URL does, or UPSTREAM__OPENAI_REGIONAL_PROCESSING for a gateway.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from urllib.parse import urlsplit

UPLIFT = Decimal("1.1")
UPLIFT_SINCE = date(2026, 3, 5)
"""gpt-5.4 came out that day: every GPT version from 5.4 on bears the uplift, 5.3 and before do not."""

_REGIONAL_HOST = re.compile(r"[a-z]{2}\.api\.openai\.com")
_SNAPSHOT_DATE = re.compile(r"-(20\d\d)-(\d\d)-(\d\d)$")  # gpt-4o-2024-08-06
_GPT_VERSION = re.compile(r"gpt-(\d+)(?:\.(\d+))?(?=$|-)")
_OLDER_MODELS = re.compile(
    r"o1(?:-mini|-preview|-pro)?|o3(?:-mini|-pro|-deep-research)?|o4-mini(?:-deep-research)?|gpt-4o(?:-[a-z-]+)?"
    r"|chatgpt-4o-latest|gpt-image-1(?:-mini|\.5)?|text-embedding-(?:3-small|3-large|ada-002)|whisper-1|tts-1(?:-hd)?(?:-1106)?"
    r"|dall-e-[23]|davinci-002|babbage-002|omni-moderation-latest|text-moderation-(?:latest|stable)|codex-mini-latest"
    r"|computer-use-preview|gpt-realtime(?:-mini)?|gpt-audio(?:-mini)?"
)
"""Undated names of models that were all out before 5 March 2026 (an undated newer one, ``gpt-image-2`` or
``gpt-realtime-2``, is not known to be older: it stays unpriced)."""


def is_regional(base_url: str) -> bool:
    """Whether the base URL is one of OpenAI's regional processing hosts."""
    return _REGIONAL_HOST.fullmatch(urlsplit(base_url).hostname or "") is not None


def regional_uplift(model: str) -> Decimal | None:
    """The factor on every token price of ``model`` served by a regional host: 1.1 for a model released
    on or after 5 March 2026, 1 for one released before, ``None`` when its release is not known. A fine-tune
    (``ft:gpt-4o-mini-2024-07-18:org:suffix:id``) goes by the model it was tuned from."""
    if model.startswith("ft:"):
        model = model.split(":")[1]
    dated = _SNAPSHOT_DATE.search(model)
    if dated is not None:
        try:
            released = date(int(dated[1]), int(dated[2]), int(dated[3]))
        except ValueError:
            return None
        return UPLIFT if released >= UPLIFT_SINCE else Decimal(1)
    version = _GPT_VERSION.match(model)
    if version is not None:
        return UPLIFT if (int(version[1]), int(version[2] or 0)) >= (5, 4) else Decimal(1)
    return Decimal(1) if _OLDER_MODELS.fullmatch(model) else None
