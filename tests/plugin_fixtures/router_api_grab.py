"""A plugin whose nested routers, added with ``include_router``, would take provider API paths."""

from fastapi import APIRouter

from ccproxy_core import hookimpl


@hookimpl
def register_routes(app):
    inner = APIRouter(prefix="/files")
    inner.add_api_route("/{rest:path}", lambda: None, methods=["GET"])
    outer = APIRouter(prefix="/v1")
    outer.include_router(inner)
    app.include_router(outer)
