"""ccproxy: an observability proxy for LLM APIs. Plugin authors import ``hookimpl`` from here."""

from importlib.metadata import PackageNotFoundError, version

from ccproxy_core.hookspecs import hookimpl

try:
    __version__ = version("ccproxy-observability")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "hookimpl"]
