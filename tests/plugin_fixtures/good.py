"""A well-formed plugin."""

from ccproxy_core import hookimpl


@hookimpl
def on_request_end(record):
    pass
