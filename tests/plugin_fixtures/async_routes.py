"""A plugin whose register_routes is async def: ccproxy would never await it, so it is refused at load."""

from ccproxy_core import hookimpl


@hookimpl
async def register_routes(app):
    app.add_api_route("/never", lambda: {"served": False}, methods=["GET"])
