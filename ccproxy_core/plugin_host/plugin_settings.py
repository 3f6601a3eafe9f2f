"""Plugin-owned settings: each plugin's model joins ``Settings`` once the plugin is loaded.

Settings are read in two steps. ``load_settings`` reads every source (CLI, environment,
.env, config file) and checks ccproxy's own sections; the ``observability`` section and the
``plugins.<name>`` tables are kept as raw values, because only the plugins know their
fields. Once the plugins are loaded, :func:`bind_plugin_settings` gives each section its
typed model (the built-in plugins' models merged into ``observability``, each third-party
model under ``plugins.<name>``), validates the values, and refuses a key no plugin knows,
naming the closest one.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ccproxy_core.errors import SettingsError
from ccproxy_core.plugin_host.plugin_spec import PluginSpec
from ccproxy_core.runtime.setting_errors import bad_setting_line
from ccproxy_core.runtime.settings import ObservabilitySettings, PluginSettings, Settings

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger("ccproxy.settings")

BUILTIN_SECTION = "observability"


def env_name(*path: str) -> str:
    """``("plugins", "jsonl", "path")`` -> ``PLUGINS__JSONL__PATH``."""
    return "__".join(path).upper()


def unknown_key_message(path: tuple[str, ...], key: str, valid: Iterable[str], what: str = "setting") -> str:
    """One line naming the unknown key, in both spellings, and the closest valid one."""
    if not path:  # a top-level table of the config file
        close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
        hint = f"did you mean [{close[0]}]?" if close else f"the sections are {', '.join(f'[{v}]' for v in valid)}"
        return f"unknown {what} [{key}] in the config file: {hint}"
    dotted = ".".join((*path, key))
    line = f"unknown {what} {env_name(*path, key)} (or {dotted} in a config file)"
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    if close:
        return f"{line}: did you mean {env_name(*path, close[0])}?"
    return f"{line}: not a setting of any loaded plugin (valid: {', '.join(sorted(valid)) or 'none'})"


def bind_plugin_settings(settings: Settings, specs: Mapping[str, PluginSpec], unloaded: Iterable[str] = ()) -> None:
    """Give the ``observability`` section and the ``plugins.<name>`` tables their plugins' models.

    ``unloaded``: plugins disabled by name or failed to load; their tables are kept unchecked,
    and while there is one, an unknown ``observability`` key may be theirs (so it is left alone).
    Raises :class:`SettingsError` on an unknown key or an invalid value. May be called again
    with more plugins: what was bound stays bound.
    """
    unloaded = set(unloaded)
    section_models = [s.settings for s in specs.values() if s.settings is not None and s.section == BUILTIN_SECTION]
    table_models = {name: s.settings for name, s in specs.items() if s.settings is not None and s.section is None}
    for name, spec in specs.items():
        if spec.settings is not None:
            _check_defaults(name, spec.settings)
        if spec.section not in (None, BUILTIN_SECTION):
            raise SettingsError(
                f"plugin {name} puts its settings in section {spec.section!r}; only "
                f"{BUILTIN_SECTION!r} (built-in plugins) or none ([plugins.{name}]) is allowed"
            )
    settings.observability = _bound_section(settings.observability, section_models, strict=not unloaded)
    settings.plugins = _bound_tables(settings.plugins, table_models, unloaded, set(specs))


def _check_defaults(plugin: str, model: type[BaseModel]) -> None:
    """Refuse a plugin whose settings model's own defaults are invalid: otherwise the error would
    name a setting the operator never set."""
    try:
        defaults = model().model_dump(warnings=False)
    except ValidationError:  # a field without a default: the operator must set it, and is told so if not
        return
    try:
        model.model_validate(defaults)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise SettingsError(
            f"plugin {plugin} is broken: the default of its setting {field} is invalid ({error['msg']}); "
            "mend or uninstall it, or name it in PLUGINS__DISABLED"
        ) from None


def _bound_section(
    current: ObservabilitySettings, models: list[type[BaseModel]], strict: bool
) -> ObservabilitySettings:
    model_class = type(current)
    new = [model for model in dict.fromkeys(models) if not issubclass(model_class, model)]
    if new:
        # Reversed: pydantic lists the fields of the last base first, so plugins keep their order.
        model_class = type(
            "ObservabilitySettings",
            (*reversed(new), model_class),
            {
                "model_config": ConfigDict(extra="allow"),
                "__module__": __name__,
                "__doc__": ObservabilitySettings.__doc__,
            },
        )
    raw = current.model_dump()
    for key in list(raw):
        if key not in model_class.model_fields:
            message = unknown_key_message((BUILTIN_SECTION,), key, model_class.model_fields)
            if strict:
                raise SettingsError(message)
            # It may belong to a plugin disabled by name, which is never imported: warn only.
            log.warning("ignoring %s (or it belongs to a plugin that is disabled or failed to load)", message)
            raw.pop(key)
    return _validated(model_class, raw, (BUILTIN_SECTION,))


def _bound_tables(
    current: PluginSettings, models: dict[str, type[BaseModel]], unloaded: set[str], loaded: set[str]
) -> PluginSettings:
    model_class: type[PluginSettings] = type(current)
    new = {name: model for name, model in models.items() if name not in model_class.model_fields}
    if new:
        fields: dict[str, Any] = {name: (model, Field(default_factory=model)) for name, model in new.items()}
        model_class = create_model("PluginSettings", __base__=model_class, __module__=__name__, **fields)
    raw = current.model_dump()
    tables = _by_plugin_name(current.model_extra or {}, raw, set(models) | loaded)
    for name, table in tables.items():
        if name in unloaded:
            continue
        if name not in model_class.model_fields:
            what = "plugin table" if name not in loaded else "setting (this plugin has no settings)"
            raise SettingsError(unknown_key_message(("plugins",), name, model_class.model_fields, what))
        model = model_class.model_fields[name].annotation
        _refuse_unknown_keys(("plugins", name), table, model)
        raw[name] = _decoded(table, model)
    for name in models:  # validated as a table, so a required setting left unset is named in full
        raw.setdefault(name, {})
    return _validated(model_class, raw, ("plugins",))


def _by_plugin_name(tables: Mapping[str, Any], raw: dict[str, Any], plugins: set[str]) -> dict[str, Any]:
    """The plugin tables under their plugins' names: an environment variable's name is upper case, so
    ``PLUGINS__UPPER__LEVEL`` is the table of a plugin named ``Upper``, its values over the config file's."""
    folded = {plugin.lower(): plugin for plugin in plugins}
    result = dict(tables)
    for name, table in tables.items():
        plugin = folded.get(name.lower())
        if plugin is None or plugin == name:
            continue
        exact = result.get(plugin)
        result[plugin] = {**exact, **table} if isinstance(exact, Mapping) and isinstance(table, Mapping) else table
        raw[plugin] = result[plugin]
        del result[name]
        raw.pop(name, None)
    return result


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _refuse_unknown_keys(path: tuple[str, ...], table: Any, model: Any) -> None:
    """An unknown key anywhere in a plugin's table, nested tables included, stops start-up naming it."""
    if not isinstance(table, Mapping) or not _is_model(model):
        return
    for key, value in table.items():
        if key not in model.model_fields:
            raise SettingsError(unknown_key_message(path, key, model.model_fields))
        _refuse_unknown_keys((*path, key), value, model.model_fields[key].annotation)


_COLLECTIONS = (list, tuple, set, frozenset)


def _decoded(table: Any, model: Any) -> Any:
    """A plugin table with its text values for list, dict and table fields decoded as ccproxy's own are:
    JSON (``'["a", "b"]'``, ``'{"a": 1}'``), or a comma-separated list (``a,b``). A config file's values are
    typed already and pass unchanged."""
    if not isinstance(table, Mapping) or not _is_model(model):
        return table
    decoded = dict(table)
    for key, value in table.items():
        annotation = model.model_fields[key].annotation
        if isinstance(value, Mapping):
            decoded[key] = _decoded(value, annotation)
        elif isinstance(value, str):
            decoded[key] = _decoded_text(value, annotation)
    return decoded


def _decoded_text(value: str, annotation: Any) -> Any:
    kinds = {get_origin(kind) or kind for kind in (get_args(annotation) or (annotation,))} | {
        get_origin(annotation) or annotation
    }
    collection = any(kind in _COLLECTIONS for kind in kinds)
    if not (collection or dict in kinds or any(_is_model(kind) for kind in kinds)):
        return value
    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except ValueError:
            return value  # left for the model to refuse, naming the setting
    if collection:
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _validated(model_class: type[M], raw: dict[str, Any], path: tuple[str, ...]) -> M:
    try:
        return model_class.model_validate(raw)
    except ValidationError as exc:
        lines = [bad_setting_line(error, model_class, path) for error in exc.errors()]
        raise SettingsError("\n".join(lines)) from None


def section_values(settings: Settings, model: type[M]) -> M:
    """The bound values of a plugin's settings model (see :meth:`ccproxy_core.plugin_host.host.Ccproxy.settings_of`)."""
    if isinstance(settings.observability, model):
        return settings.observability
    for name in type(settings.plugins).model_fields:
        value = getattr(settings.plugins, name)
        if isinstance(value, model):
            return value
    raise LookupError(f"no loaded plugin declares the settings model {model.__qualname__}")
