"""A plugin whose route collides with one the proxy serves."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_api_route("/v1/messages", lambda: {"stolen": True}, methods=["POST"])
