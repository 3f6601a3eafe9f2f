"""ccproxy: an observability proxy for LLM APIs.

What a plugin author imports comes from here; these names are the stable surface (see
docs/plugins.md, "The stable surface"). Two submodules belong to it as well, imported by
name because they start servers: ``ccproxy_core.testing`` (real servers, the mock provider,
``make_record``) and ``ccproxy_core.testing.pytest_plugin`` (the same as pytest fixtures). Every other
module of ``ccproxy_core`` is internal and may change between releases.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ccproxy-observability")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

from ccproxy_core.accounting.record import AccessRecord, RequestContext
from ccproxy_core.errors import CcproxyError, SettingsError, StartupError
from ccproxy_core.plugin_host.admission import Admission
from ccproxy_core.plugin_host.hookspecs import hookimpl
from ccproxy_core.plugin_host.host import Ccproxy, host_of
from ccproxy_core.plugin_host.log_store import (
    Bucket,
    EncodedRowReads,
    EncodedRows,
    Grouping,
    LogCollectionSettings,
    LogFilters,
    LogStore,
    NameFilter,
    PagePosition,
    QueryPage,
)
from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.plugin_host.plugin_spec import PluginSpec, flag
from ccproxy_core.runtime.settings import Settings
from ccproxy_core.security.auth import require_auth_token

__all__ = [
    "AccessRecord",
    "Admission",
    "Bucket",
    "Ccproxy",
    "CcproxyError",
    "EncodedRowReads",
    "EncodedRows",
    "Grouping",
    "LogCollectionSettings",
    "LogFilters",
    "LogStore",
    "NameFilter",
    "PagePosition",
    "PluginSpec",
    "QueryPage",
    "RequestContext",
    "Settings",
    "SettingsError",
    "StartupError",
    "__version__",
    "flag",
    "hookimpl",
    "host_of",
    "require_auth_token",
    "section_values",
]
