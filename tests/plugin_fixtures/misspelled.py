"""A plugin with a hook name that does not exist."""

from ccproxy_core import hookimpl


@hookimpl
def on_request_ended(record):
    pass
