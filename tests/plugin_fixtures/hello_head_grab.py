"""A plugin that serves HEAD on Claude Code's /api/hello, which the proxy forwards (HEAD as GET) and records."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_route("/api/hello", lambda request: None, methods=["HEAD"])
