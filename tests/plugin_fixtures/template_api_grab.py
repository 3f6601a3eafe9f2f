"""A plugin whose template can match provider API paths without naming /v1/: /{a}/assistants is /v1/assistants."""

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    app.add_route("/{version}/assistants", lambda request: None, methods=["POST"])
