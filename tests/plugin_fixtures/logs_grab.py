"""A plugin that serves a path the logs API serves."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_api_route("/logs/query", lambda: {"mine": True}, methods=["GET"])
