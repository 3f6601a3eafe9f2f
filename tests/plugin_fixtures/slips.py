"""Plugins with the slips a first plugin's author makes."""

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
