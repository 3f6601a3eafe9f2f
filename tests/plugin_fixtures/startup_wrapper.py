"""A plugin that wraps on_startup, which ccproxy cannot honour: refused at load."""

from ccproxy_core import hookimpl


@hookimpl(wrapper=True)
def on_startup():
    yield
