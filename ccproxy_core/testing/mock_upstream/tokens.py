"""The mock's deterministic answer text and token counts (the rules are listed in the package docstring)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

CHARACTERS_PER_TOKEN = 4
TOKENS_PER_DELTA = 3
OPENAI_CACHE_MIN_PROMPT_TOKENS = 1024
OPENAI_CACHE_GRANULARITY = 128

ANSWER_WORDS: tuple[str, ...] = tuple(
    word + " "
    for word in [
        "This",
        "is",
        "a",
        "deterministic",
        "answer",
        "from",
        "the",
        "ccproxy",
        "mock",
        "upstream,",
        "one",
        "piece",
        "per",
        "delta.",
    ]
)
"""Delta ``i`` carries ``ANSWER_WORDS[i % len(ANSWER_WORDS)]``."""

ANSWER_WORDS_JSON: tuple[str, ...] = tuple(json.dumps(word) for word in ANSWER_WORDS)
"""Each word already encoded as a JSON string, so streams are assembled without re-encoding."""


def delta_text(index: int) -> str:
    """The text of delta number ``index`` (0-based)."""
    return ANSWER_WORDS[index % len(ANSWER_WORDS)]


@lru_cache(maxsize=256)
def answer_text(delta_count: int) -> str:
    """The whole answer: the concatenated text of ``delta_count`` deltas."""
    return "".join(delta_text(index) for index in range(delta_count))


def output_tokens(delta_count: int) -> int:
    """Output tokens of an answer of ``delta_count`` deltas; never 0, as real providers report."""
    return max(1, TOKENS_PER_DELTA * delta_count)


def prompt_characters(value: Any) -> int:
    """Characters of prompt text in ``value`` (a request's ``system`` or ``messages``).

    Counts every plain string, and the strings under ``text`` and ``content`` keys of
    objects, at any depth; other keys (roles, image data, tool schemas) are not counted.
    """
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return sum(prompt_characters(item) for item in value)
    if isinstance(value, dict):
        return prompt_characters(value.get("text")) + prompt_characters(value.get("content"))
    return 0


def prompt_tokens(payload: dict[str, Any]) -> int:
    """Total input tokens of a request: prompt characters of ``system`` and ``messages`` // 4, at least 1."""
    characters = prompt_characters(payload.get("system")) + prompt_characters(payload.get("messages"))
    return max(1, characters // CHARACTERS_PER_TOKEN)


def has_cache_control(value: Any) -> bool:
    """True when an object at any depth of ``value`` has a non-null ``cache_control``."""
    if isinstance(value, list):
        return any(has_cache_control(item) for item in value)
    if isinstance(value, dict):
        if value.get("cache_control") is not None:
            return True
        return any(has_cache_control(item) for item in value.values() if isinstance(item, (list, dict)))
    return False


@dataclass(frozen=True, slots=True)
class AnthropicUsage:
    """Anthropic's split of the prompt: ``input_tokens`` excludes both cache counts."""

    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int


def anthropic_usage(
    payload: dict[str, Any], body: bytes, delta_count: int, prompt: int | None = None
) -> AnthropicUsage:
    """Usage of an Anthropic request: with any ``cache_control``, 1/2 of the prompt is read, 1/4 written.

    ``prompt`` replaces the counted prompt tokens (``x-mock-input-tokens``).
    """
    total = prompt_tokens(payload) if prompt is None else prompt
    # The byte test is a cheap pre-filter; the walk rules out the words appearing in prompt text.
    if b'"cache_control"' in body and any(
        has_cache_control(payload.get(key)) for key in ("system", "messages", "tools")
    ):
        read, written = total // 2, total // 4
    else:
        read = written = 0
    return AnthropicUsage(total - read - written, written, read, output_tokens(delta_count))


@dataclass(frozen=True, slots=True)
class OpenAIUsage:
    """OpenAI's split: ``prompt_tokens`` includes ``cached_tokens``."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


def openai_usage(payload: dict[str, Any], delta_count: int, prompt: int | None = None) -> OpenAIUsage:
    """Usage of an OpenAI request: prompts of 1024+ tokens have half of them cached, in 128-token steps.

    ``prompt`` replaces the counted prompt tokens (``x-mock-input-tokens``).
    """
    prompt = prompt_tokens(payload) if prompt is None else prompt
    cached = 0
    if prompt >= OPENAI_CACHE_MIN_PROMPT_TOKENS:
        cached = (prompt // 2) // OPENAI_CACHE_GRANULARITY * OPENAI_CACHE_GRANULARITY
    return OpenAIUsage(prompt, cached, output_tokens(delta_count))
