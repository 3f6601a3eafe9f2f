"""SVG images: the images API's ``svg_usage``.

An image asked for with ``output_format: "svg"`` is made by two models in turn: the image model
renders a reference image (``usage``) and a text model authors the SVG (``svg_usage``: its
``model``, ``input_tokens`` and ``output_tokens``, reasoning among them). Both are billed. The
record keeps the answer's model and the sum of both counts; the cost is each part at its own
model's rates, as for Anthropic's advisor steps.
"""

from __future__ import annotations

import copy
from typing import Any

from ccproxy_core.accounting.usage import Usage
from ccproxy_core.providers.base import billed_count, read_model, token_count


def add_svg_authoring(usage: Usage, raw: Any) -> None:
    """Add the SVG author's usage to an image answer's; one that cannot be read leaves the cost unknown."""
    if raw is None:
        return
    author = _author_usage(raw)
    if author is None or usage.input_tokens is None or usage.output_tokens is None:
        usage.bad_counts = True  # the bill has a part this answer does not show whole
        return
    image = copy.copy(usage)
    image.response_model = None  # priced as the answer is
    image.steps = None
    image.web_search_requests = image.file_search_requests = None
    usage.steps = (image, author)
    usage.input_tokens += author.input_tokens or 0
    usage.output_tokens += author.output_tokens or 0
    if author.reasoning_tokens:
        usage.reasoning_tokens = (usage.reasoning_tokens or 0) + author.reasoning_tokens


def _author_usage(raw: Any) -> Usage | None:
    """The author's usage, or ``None`` when its model or a count is missing or not a count."""
    if not isinstance(raw, dict):
        return None
    author = Usage()
    read_model(author, raw.get("model"))
    author.input_tokens = billed_count(author, raw.get("input_tokens"))
    author.output_tokens = billed_count(author, raw.get("output_tokens"))
    reasoning = token_count(raw.get("reasoning_tokens"))
    if author.bad_counts or author.response_model is None or None in (author.input_tokens, author.output_tokens):
        return None
    author.reasoning_tokens = min(reasoning, author.output_tokens or 0) if reasoning is not None else None
    return author
