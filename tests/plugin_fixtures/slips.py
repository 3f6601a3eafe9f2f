"""Plugins with the slips a first plugin's author makes."""

import functools

from ccproxy_core import hookimpl


class Unmarked:
    """A hook function without ``@hookimpl``: ccproxy would never call it."""

    def on_request_end(self, record):
        raise AssertionError("never called")


class MisspelledArgument:
    @hookimpl
    def on_request_end(self, recrod):
        pass


class Empty:
    """Nothing a plugin could do."""


class LazyConnection:
    """A misspelled hook beside a property that must never run while the plugin is looked at."""

    @property
    def connection(self):
        raise KeyboardInterrupt("the property ran")

    @hookimpl
    def on_request_ended(self, record):
        pass


def _end(record):
    pass


class PartialHook:
    """A marked hook that is no function: pluggy never calls it."""

    on_request_end = hookimpl(functools.partial(_end))


LAZY = LazyConnection()
"""An instance: its property would run if read."""
