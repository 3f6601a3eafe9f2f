"""The mock's model catalogue, in Anthropic's shape or OpenAI's (``GET /v1/models[/{model_id}]``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ccproxy_core.testing.mock_upstream.answers import dump

# (id, display name, release date); all are priced by genai-prices, so proxied costs are known.
ANTHROPIC_MODELS: tuple[tuple[str, str, str], ...] = (
    ("claude-opus-4-6", "Claude Opus 4.6", "2026-02-05"),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "2026-02-17"),
    ("claude-haiku-4-5-20251001", "Claude Haiku 4.5", "2025-10-01"),
    ("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5", "2025-09-29"),
)
OPENAI_MODELS: tuple[tuple[str, str], ...] = (
    ("gpt-5", "2025-08-07"),
    ("gpt-5-mini", "2025-08-07"),
    ("gpt-4.1", "2025-04-14"),
    ("gpt-4o", "2024-05-13"),
    ("gpt-4o-mini", "2024-07-18"),
)


def _anthropic_model(model_id: str, display_name: str, released: str) -> dict[str, Any]:
    line = next((name for name in ("opus", "sonnet", "haiku") if name in model_id), None)
    return {
        "type": "model",
        "id": model_id,
        "display_name": display_name,
        "created_at": f"{released}T00:00:00Z",
        "lifecycle": "active",
        "deprecated_at": None,
        "retires_at": None,
        "line": line,
        "max_input_tokens": 200_000,
        "max_tokens": 64_000,
    }


def _openai_model(model_id: str, released: str) -> dict[str, Any]:
    created = int(datetime.fromisoformat(released).replace(tzinfo=UTC).timestamp())
    return {"id": model_id, "object": "model", "created": created, "owned_by": "system"}


_ANTHROPIC_BY_ID = {model[0]: _anthropic_model(*model) for model in ANTHROPIC_MODELS}
_OPENAI_BY_ID = {model[0]: _openai_model(*model) for model in OPENAI_MODELS}

ANTHROPIC_MODEL_LIST = dump(
    {
        "data": list(_ANTHROPIC_BY_ID.values()),
        "has_more": False,
        "first_id": ANTHROPIC_MODELS[0][0],
        "last_id": ANTHROPIC_MODELS[-1][0],
    }
)
OPENAI_MODEL_LIST = dump({"object": "list", "data": list(_OPENAI_BY_ID.values())})


def anthropic_model(model_id: str) -> bytes | None:
    """One Anthropic model in Anthropic's shape; None when the catalogue has no such model."""
    model = _ANTHROPIC_BY_ID.get(model_id)
    return None if model is None else dump(model)


def openai_model(model_id: str) -> bytes | None:
    """One OpenAI model in OpenAI's shape; None when the catalogue has no such model."""
    model = _OPENAI_BY_ID.get(model_id)
    return None if model is None else dump(model)
