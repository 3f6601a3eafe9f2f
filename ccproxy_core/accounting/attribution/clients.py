"""Which client sent a request, read from its User-Agent.

Known shapes (the products' own strings):

- Claude Code: ``claude-cli/2.1.332 (external, sdk-cli)`` -> ``claude-code 2.1.332``
- Codex CLI: ``codex_cli_rs/0.171.0 (Ubuntu 24.4.0; x86_64) ...`` and ``codex_exec/0.171.0`` -> ``codex``
- The Stainless-built SDKs: ``Anthropic/Python 0.40.0``, ``AsyncAnthropic/Python ...``,
  ``OpenAI/Python 1.2.3``, ``AsyncOpenAI/Python``, ``Anthropic/JS``, ``OpenAI/Go``, ``Anthropic/Java``
  -> ``anthropic-python``, ``openai-js``, ``anthropic-go``, ...
- ``curl/8.5.0`` -> ``curl``

Anything else is named by its first product token (``name/version``).
"""

from __future__ import annotations

import re
from functools import lru_cache

from .clean import clean_text

MAX_NAME_CHARS = 64
MAX_VERSION_CHARS = 32

# A product token ends where the User-Agent's word does: ``team-é/1.0`` names none, not ``team-``.
_PRODUCT = re.compile(r"\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?:/([^\s;()]+))?(?=[\s;()/]|$)")
_SDK = re.compile(r"^(?:Async)?(?:Azure)?(Anthropic|OpenAI)(?:Bedrock|Vertex)?/([A-Za-z]+)\s+([^\s;()]+)")
_RENAMED = {"claude-cli": "claude-code", "codex_cli_rs": "codex", "codex_exec": "codex", "codex_tui": "codex"}


_READ_CHARS = 200  # the product tokens that name a client come first


def parse_user_agent(user_agent: str | None) -> tuple[str | None, str | None]:
    """``(client_name, client_version)``; ``(None, None)`` without a readable product token."""
    if not user_agent:
        return None, None
    return _parse(user_agent[:_READ_CHARS])


@lru_cache(maxsize=1024)
def _parse(user_agent: str) -> tuple[str | None, str | None]:
    """Cached (on a bounded prefix): a proxy sees few distinct user agents, and each is parsed once."""
    sdk = _SDK.match(user_agent)
    if sdk is not None:
        vendor, language, version = sdk.groups()
        return f"{vendor.lower()}-{language.lower()}", clean_text(version, MAX_VERSION_CHARS)
    product = _PRODUCT.match(user_agent)
    if product is None:
        return None, None
    name, version = product.groups()
    name = _RENAMED.get(name, name)
    return clean_text(name, MAX_NAME_CHARS), clean_text(version, MAX_VERSION_CHARS)
