"""Build :class:`Settings` from every source and turn validation errors into one readable line.

Unknown names: a key the config file does not know, or an ``OBSERVABILITY__*`` or
``PLUGINS__*`` environment variable no loaded plugin knows, stops start-up with one line
naming it and the closest valid name; those prefixes are ccproxy's own. ``SERVER__``,
``UPSTREAM__``, ``SECURITY__``, ``ATTRIBUTION__`` and ``LOGGING__`` are generic words other
programs' variables may share, so an unknown one there is only warned about.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from pydantic import BaseModel, ValidationError
from pydantic_settings import NoDecode
from pydantic_settings import SettingsError as SourceError

from ccproxy_core.errors import SettingsError
from ccproxy_core.plugin_host.plugin_settings import unknown_key_message
from ccproxy_core.runtime.budget_settings import BUDGET_ERROR, BudgetSettings
from ccproxy_core.runtime.setting_errors import bad_setting_line, infinite_setting
from ccproxy_core.runtime.settings import Settings, _config_file, default_config_path
from ccproxy_core.safe_values import safe_text, shown_setting_value

log = logging.getLogger("ccproxy.settings")

WARNED_PREFIXES = ("server", "upstream", "security", "attribution", "logging")
"""Sections whose unknown environment variables are warned about, not refused."""
PLUGIN_SECTIONS = ("observability", "plugins")
"""Sections whose keys only the loaded plugins know (checked once they are loaded)."""


def load_settings(
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    entry_points_: Iterable[EntryPoint] | None = None,
) -> Settings:
    """Read settings: ``overrides`` (CLI flags, nested dicts) > env > .env > config file > defaults.

    ``config_file`` must exist when given; without it the default location is read if present.
    The installed plugins' settings models are bound in (``entry_points_`` replaces the
    installed ones, for tests). Raises :class:`SettingsError` with a message naming the bad setting.
    """
    from ccproxy_core.plugin_host.plugins import bind_installed_plugin_settings

    path = resolve_config_file(config_file)
    document = _read_toml(path) if path is not None else {}
    if path is not None:
        _refuse_unknown_file_keys(document)
    _refuse_unreadable_env_file()
    warn_about_unknown_environment(os.environ)
    token = _config_file.set(path)
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, path, document)) from None
    except SourceError as exc:
        raise SettingsError(describe_undecodable_setting() or f"{exc}: {exc.__cause__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError("the .env file or the config file is not UTF-8 text: save it as UTF-8") from None
    except RecursionError:
        raise SettingsError(_too_deep()) from None
    finally:
        _config_file.reset(token)
    settings = bind_installed_plugin_settings(settings, entry_points_)
    if (infinite := infinite_setting(settings)) is not None:
        raise SettingsError(infinite)
    return settings


def _refuse_unreadable_env_file() -> None:
    """A ``.env`` line python-dotenv cannot read is skipped with a warning naming no file, and a name
    without ``=`` reads as no value at all: the setting written there (a token, say) would silently not
    apply."""
    env_file = Path(str(Settings.model_config.get("env_file")))
    if env_file.is_dir():
        raise SettingsError(f"{env_file.resolve()} is a folder, not a .env file of settings: rename or remove it")
    try:
        with env_file.open(encoding="utf-8") as stream:
            broken = next((binding for binding in parse_stream(stream) if binding.error or _bare_name(binding)), None)
    except (OSError, UnicodeDecodeError):
        return  # none, or not text: pydantic-settings says so
    if broken is None:
        return
    where = f"{env_file.resolve()} line {_first_line(broken.original)}"
    if broken.error:
        raise SettingsError(f"{where} cannot be read as NAME=value: fix or remove it")
    raise SettingsError(f"{where} names {broken.key} without a value: write {broken.key}=value, or remove the line")


def _bare_name(binding: Any) -> bool:
    """A setting's name without ``=value`` that the environment does not give either (Docker's env files
    take such a line from the environment, and so does ccproxy, where the environment comes first)."""
    if binding.key is None or binding.value is not None or binding.key in os.environ:
        return False
    section, separator, _ = binding.key.lower().partition("__")
    return bool(separator) and section in Settings.model_fields


def _first_line(original: Any) -> int:
    """The line of a statement's first text: python-dotenv counts blank lines before it as its own."""
    text = original.string
    return int(original.line) + text[: len(text) - len(text.lstrip())].count("\n")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM, as Windows editors write, is no statement
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"config file {path} is not UTF-8 text: save it as UTF-8 (TOML is)") from None
    except OSError as exc:
        raise SettingsError(f"config file {path} cannot be read: {exc.strerror}") from None
    except RecursionError:
        raise SettingsError(f"config file {path} nests arrays or tables too deeply: {NESTING_FIX}") from None


NESTING_FIX = "no setting of ccproxy is nested more than a few levels"


def _too_deep() -> str:
    """Which setting's value nests too deeply to be read, as far as the environment tells."""
    sections = Settings.model_fields.keys()
    for name, value in os.environ.items():
        ours = name.split("__", 1)[0].lower() in sections
        if ours and value.lstrip()[:1] in ("[", "{") and value.count("[") + value.count("{") > 100:
            return f"{name} nests lists or tables too deeply: {NESTING_FIX}"
    return f"a setting (in the environment or the .env file) nests lists or tables too deeply: {NESTING_FIX}"


def _refuse_unknown_file_keys(document: Mapping[str, Any]) -> None:
    """ccproxy's own sections are checked here; the plugins' once they are loaded."""
    sections = Settings.model_fields
    for name, table in document.items():
        if name not in sections:
            raise SettingsError(unknown_key_message((), name, sections, "section"))
        model = sections[name].annotation
        if name in PLUGIN_SECTIONS or not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        if not isinstance(table, Mapping):
            raise SettingsError(f"config file: {name} must be a table ([{name}]), not a value")
        for key in table:
            if key not in model.model_fields:
                raise SettingsError(unknown_key_message((name,), key, model.model_fields))


def warn_about_unknown_environment(environment: Mapping[str, str]) -> list[str]:
    """Log (and return) one warning per ``SERVER__``-style variable that is no setting."""
    warnings = []
    for variable in environment:
        section, _, rest = variable.lower().partition("__")
        key = rest.partition("__")[0]  # ATTRIBUTION__KEYS__<fingerprint> sets one entry of a table
        if section not in WARNED_PREFIXES or not key:
            continue
        model = Settings.model_fields[section].annotation
        if key not in model.model_fields:  # type: ignore[union-attr]
            warnings.append(f"ignoring {unknown_key_message((section,), key, model.model_fields)}")  # type: ignore[union-attr]
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def resolve_config_file(config_file: str | Path | None) -> Path | None:
    """The config file settings are read from: ``config_file``, else ``CCPROXY_CONFIG``, else the default
    location when a file is there; ``None`` when there is none."""
    if config_file is not None:
        path = Path(config_file).expanduser()
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist (given with --config)")
        return path
    if explicit := os.environ.get("CCPROXY_CONFIG"):  # named on purpose: it must be there
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SettingsError(f"config file {path} does not exist or is not a file (CCPROXY_CONFIG): fix or unset it")
        return path
    default = default_config_path()
    return default if default.is_file() else None


def describe_validation_error(
    exc: ValidationError, config_file: Path | None = None, document: Mapping[str, Any] | None = None
) -> str:
    """One line per bad setting: its environment variable name, the bad value, and what is allowed; and
    its place in ``config_file`` (read as ``document``) when the bad value is the one written there."""
    lines = []
    errors = exc.errors()
    for error in errors:
        if _a_table_where_text_may_stand(error, errors):
            continue
        if error["type"] == BUDGET_ERROR:
            lines.append(describe_budget_error(error))
            continue
        lines.append(bad_setting_line(error, Settings, where=_place_in_file(error, config_file, document or {})))
    return "\n".join(lines)


def _place_in_file(error: Mapping[str, Any], config_file: Path | None, document: Mapping[str, Any]) -> str:
    """`` (server.port in FILE)`` when the bad value is what the file says there: an operator who wrote it in
    the file would look for an environment variable that is not there. Only settings' own names are
    shown: a table's keys may be anything pasted there (a key in place of its fingerprint)."""
    names = [part for part in error["loc"] if isinstance(part, str)]
    if config_file is None or not names or not all(_SETTING_NAME.fullmatch(name) for name in names):
        return ""
    value: Any = document
    for name in names:
        if not isinstance(value, Mapping) or name not in value:
            return ""
        value = value[name]
    return f" ({'.'.join(names)} in {config_file})" if value == error.get("input") else ""


_SETTING_NAME = re.compile(r"[a-z][a-z0-9_]*")
"""A field's name as ccproxy's settings models spell them."""


def _a_table_where_text_may_stand(error: Mapping[str, Any], errors: list[Any]) -> bool:
    """The text branch of a value that may be text or a table, given a table with errors of its own:
    only those name what is wrong (``[attribution.keys]``)."""
    if error["type"] != "string_type" or not isinstance(error.get("input"), dict):
        return False
    entry = tuple(error["loc"][:-1])
    return any(other is not error and tuple(other["loc"][: len(entry)]) == entry for other in errors)


def describe_budget_error(error: Mapping[str, Any]) -> str:
    """A bad ``[[budgets]]`` entry, by its place and its name: ``budgets.0.scope='x' (budget 'team-daily')``."""
    context = error["ctx"]
    if len(error["loc"]) == 1:  # the list itself
        return (
            f"invalid setting budgets: {context['message']}: write each budget as a [[budgets]] table "
            "of the config file (double brackets), or BUDGETS as a JSON list of objects"
        )
    place = safe_text(".".join(str(part) for part in error["loc"]), 200)
    name = context["name"]
    budget = f" (budget {shown_setting_value('name', name[:64])})" if name else " (a budget without a name)"
    if context["error"] != "extra_forbidden":
        return f"invalid setting {place}={shown_setting_value(place, error.get('input'))}{budget}: {context['message']}"
    key = str(error["loc"][-1])
    close = difflib.get_close_matches(key, list(BudgetSettings.model_fields), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}?" if close else f"a budget's keys are {', '.join(BudgetSettings.model_fields)}"
    return f"unknown key {place}{budget}: {hint}"


def describe_undecodable_setting() -> str | None:
    """The line naming a JSON-valued variable (environment first, then .env) that is not JSON.

    pydantic-settings only names the section, and only in a traceback, so the culprit is found here.
    """
    env_file = Path(str(Settings.model_config.get("env_file")))
    sources: list[tuple[Mapping[str, str], str]] = [(os.environ, "")]
    if env_file.is_file():
        sources.append(({k: v for k, v in dotenv_values(env_file).items() if v is not None}, f" (in {env_file})"))
    for variables, origin in sources:
        for variable, value in variables.items():
            kind = _json_kind(variable.lower().split("__"))
            if kind is None:
                continue
            try:
                json.loads(value)
            except json.JSONDecodeError as exc:
                example = '\'{"name": "value"}\'' if kind == "object" else '\'[{"name": "value"}]\''
                return (
                    f"invalid setting {variable.upper()}{origin}: not valid JSON ({exc.msg}, column {exc.colno}): "
                    f"write it as a JSON {kind} in single quotes, such as {example}"
                )
    return None


def _json_kind(path: list[str]) -> str | None:
    """``"object"`` or ``"list"`` when pydantic-settings decodes the variable at ``path`` as JSON."""
    model: type[BaseModel] = Settings
    for depth, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None or NoDecode in field.metadata:
            return None
        annotation = _without_none(field.annotation)
        if depth == len(path) - 1:
            return _kind_of(annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return None


def _without_none(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, UnionType):
        rest = [arg for arg in get_args(annotation) if arg is not NoneType]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _kind_of(annotation: Any) -> str | None:
    origin = get_origin(annotation) or annotation
    if origin is dict or (isinstance(origin, type) and issubclass(origin, BaseModel)):
        return "object"
    if origin in (list, set, tuple, frozenset):
        return "list"
    return None
