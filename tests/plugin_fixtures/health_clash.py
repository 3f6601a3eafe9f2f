"""A plugin whose route collides with the core's /health."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_api_route("/health", lambda: {"mine": True}, methods=["GET"])
