"""Build :class:`Settings` from every source and turn validation errors into one readable line."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ccproxy_core.errors import SettingsError
from ccproxy_core.settings import Settings, _config_file, default_config_path


def load_settings(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Read settings: ``overrides`` (CLI flags, nested dicts) > env > .env > config file > defaults.

    ``config_file`` must exist when given; without it the default location is read if present.
    Raises :class:`SettingsError` with a message naming the bad setting.
    """
    path = _resolve_config_file(config_file)
    token = _config_file.set(path)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    finally:
        _config_file.reset(token)


def _resolve_config_file(config_file: str | Path | None) -> Path | None:
    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist (given with --config)")
        return path
    default = default_config_path()
    return default if default.is_file() else None


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad setting: its environment variable name, the bad value, and what is allowed."""
    lines = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"] if not isinstance(part, int)]
        name = "__".join(location).upper() or "settings"
        value = error.get("input")
        shown = "(missing)" if isinstance(value, dict) else repr(value)
        lines.append(f"invalid setting {name}={shown}: {error['msg']}")
    return "\n".join(lines)
