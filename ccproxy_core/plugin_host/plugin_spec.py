"""What a plugin tells the host about itself, through its ``register_plugin`` hook.

The core hard-codes no plugin's name, flag, setting or URL: each plugin declares them
here, the built-in ones exactly as a third-party plugin would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

BUILT_IN_DISTRIBUTION = "ccproxy-observability"
"""The distribution of ccproxy's own plugins."""

if TYPE_CHECKING:
    from ccproxy_core.runtime.settings import Settings

Enablement = Callable[["Settings"], tuple[bool, str]]
"""Settings in, ``(enabled, reason)`` out; the reason is what ``ccproxy plugins list`` shows."""


@dataclass(frozen=True)
class PluginSpec:
    """A plugin's declaration. Every field is optional."""

    settings: type[BaseModel] | None = None
    """The plugin's pydantic settings model (fields with defaults, each with a docstring).

    Third-party plugins get a ``[plugins.<name>]`` table in the config file and
    ``PLUGINS__<NAME>__<FIELD>`` environment variables; read the values with
    ``ccproxy.settings_of(Model)``. An unknown key there stops start-up. Only plugins loaded
    through an entry point have their settings read (the entry-point name names the table).
    """
    section: str | None = None
    """Where the settings live instead of ``plugins.<name>``. Only ``"observability"`` is
    accepted: the built-in plugins keep their documented ``OBSERVABILITY__*`` names there."""
    enabled_when: Enablement | None = None
    """When the plugin loads. ``None``: whenever it is installed (and not disabled by name)."""
    own_paths: tuple[str, ...] = ()
    """URL prefixes this plugin serves. While ``switch`` is off, a request under one answers
    404 naming ``switch`` instead of being proxied."""
    switch: str | None = None
    """The boolean setting that turns ``own_paths`` on, by its environment name
    (``OBSERVABILITY__METRICS_ENDPOINT_ENABLED``)."""
    starts_after: tuple[str, ...] = ()
    """Plugins (by name) whose ``on_startup`` must finish before this plugin's runs. A name
    that is not loaded is ignored, so an optional dependency is declared the same way."""

    def __post_init__(self) -> None:
        if self.settings is not None and not (isinstance(self.settings, type) and issubclass(self.settings, BaseModel)):
            raise TypeError(f"PluginSpec.settings must be a pydantic model class, not {self.settings!r}")


def flag(setting: str) -> Enablement:
    """Enabled while the boolean setting named ``setting`` (its environment name) is true."""

    def enabled(settings: Settings) -> tuple[bool, str]:
        on = bool(setting_value(settings, setting))
        return on, f"{setting}={'true' if on else 'false'}"

    return enabled


def setting_value(settings: object, environment_name: str, default: object = None) -> object:
    """The value of ``SECTION__FIELD`` (an environment name) in ``settings``, or ``default``."""
    value = settings
    for part in environment_name.lower().split("__"):
        value = getattr(value, part, None)
        if value is None:
            return default
    return value


_ASKED = "_ccproxy_specs_asked"


def specs_of(pm: object) -> dict[str, PluginSpec]:
    """The ``PluginSpec`` of every registered plugin that declares one, by plugin name.

    Each plugin's ``register_plugin`` is called once per manager: its answer is kept, as the contract
    says it is asked once."""
    asked: dict[tuple[str, Any], PluginSpec] = pm.__dict__.setdefault(_ASKED, {})
    specs: dict[str, PluginSpec] = {}
    for impl in pm.hook.register_plugin.get_hookimpls():  # type: ignore[attr-defined]
        key = (impl.plugin_name, impl.function)
        spec = asked[key] if key in asked else impl.function()
        if not isinstance(spec, PluginSpec):
            raise TypeError(f"register_plugin of plugin {impl.plugin_name} returned {spec!r}, not a PluginSpec")
        specs[impl.plugin_name] = asked[key] = spec
    return specs
