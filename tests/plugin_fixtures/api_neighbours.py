"""A plugin whose routes sit beside /api/hello without taking it: a WebSocket channel and a deeper path."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.router.add_websocket_route("/api/{channel}", lambda websocket: None)
    app.add_route("/api/api/{name}", lambda request: None, methods=["GET"])
    app.add_route("/api/status", lambda request: None, methods=["GET"])
