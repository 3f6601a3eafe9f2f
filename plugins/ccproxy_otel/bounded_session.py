"""The session the OTLP exporters send with: it reads at most a mebibyte of a collector's reply.

``requests`` reads a reply whole unless asked to stream it, and the exporters ask for nothing; a
collector, or whatever answers at a mistyped endpoint, could make ccproxy hold gigabytes. A reply
only carries an export's partial-success note, so the rest is left unread and the connection closed.
"""

from __future__ import annotations

import os
from typing import Any

import requests

MAX_REPLY_BYTES = 1 << 20
"""The most of one collector reply ccproxy reads."""

CREDENTIAL_PROVIDER_VARIABLES = tuple(
    f"OTEL_PYTHON_EXPORTER_OTLP_HTTP{signal}_CREDENTIAL_PROVIDER" for signal in ("", "_TRACES", "_METRICS")
)
"""The SDK's own way to hand the exporters a session: where the operator names one, the SDK's is used."""


class BoundedReplySession(requests.Session):
    """A ``requests`` session whose replies are read up to :data:`MAX_REPLY_BYTES`."""

    def request(self, method: str, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        body = bytearray()
        try:
            for chunk in response.iter_content(64 * 1024):
                body += chunk
                if len(body) >= MAX_REPLY_BYTES:
                    del body[MAX_REPLY_BYTES:]
                    break
        finally:
            response.close()
        response._content = bytes(body)
        return response


def exporter_session() -> requests.Session | None:
    """A bounded session, or ``None`` (the SDK's choice) when the operator names a credential provider."""
    if any(os.environ.get(name) for name in CREDENTIAL_PROVIDER_VARIABLES):
        return None
    return BoundedReplySession()
