"""A plugin whose router, added with ``include_router``, collides with the core's /health."""

from fastapi import APIRouter

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    router = APIRouter()
    router.add_api_route("/health", lambda: {"mine": True}, methods=["GET"])
    app.include_router(router)
