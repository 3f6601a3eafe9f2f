"""uvicorn's WebSocket protocol, with an HTTP answer to the upgrade counted as the end of its handshake."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    """As uvicorn's, except that an HTTP answer to an upgrade ends the handshake.

    ccproxy answers some upgrades with HTTP: a 403 to another site's page, the provider's own
    refusal passed on, a 404 for a path that is not a socket. uvicorn logged each as an
    application error ("ASGI callable returned without completing handshake"): an ERROR line
    per refused socket, which any web page can cause, past the refusal log's rate limit.
    """

    async def send(self, message: Any) -> None:  # an ASGI send event
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True
