"""A plugin whose catch-all route would take provider API paths that are forwarded."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_route("/v1/{rest:path}", lambda request: None, methods=["POST"])
