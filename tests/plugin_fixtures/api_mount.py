"""A plugin that mounts an app over provider API paths that are forwarded."""

from starlette.applications import Starlette

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.mount("/api/v1", Starlette())
