"""A plugin whose template matches /api/hello, a path outside /v1/ that the proxy forwards and records."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_route("/api/{anything}", lambda request: None, methods=["GET"])
