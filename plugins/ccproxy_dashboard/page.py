"""The HTML documents the plugin answers with: the dashboard itself and short message pages."""

from __future__ import annotations

import html
import json
import time
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from ccproxy_core.runtime.settings import Settings

REFRESH_SECONDS = 5
"""How often the page polls /logs/analytics for tiles, charts and tables (the feed is pushed, not polled)."""
FEED_MAX_ROWS = 200
"""Rows the live feed keeps in the DOM; older rows are dropped so a busy proxy cannot freeze the tab."""

# The page loads only its own bundle and talks only to its own origin.
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
MESSAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"

_HERE = Path(__file__).parent


@cache
def _template(name: str) -> Template:
    return Template((_HERE / name).read_text(encoding="utf-8"))


def page_config(settings: Settings, prefix: str) -> dict[str, Any]:
    """What the page's script needs to know, embedded in the page as JSON."""
    observability = settings.observability
    return {
        "logs_base": f"{prefix}/logs",
        "logs_endpoints_enabled": getattr(observability, "logs_endpoints_enabled", False),
        "logs_collection_enabled": getattr(observability, "logs_collection_enabled", False),
        "refresh_seconds": REFRESH_SECONDS,
        "feed_max_rows": FEED_MAX_ROWS,
        # The windows end at the server's now, not at the browser's: a laptop clock minutes off would
        # leave out the newest requests (or count ones not yet made) while the live feed shows them.
        "server_time": time.time(),
    }


def json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: no ``</script>``, ``<!--`` or ``&`` can end or bend it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def dashboard_html(settings: Settings, prefix: str, version: str) -> str:
    """The dashboard page; all request-derived data arrives later, through the JSON APIs."""
    return _template("page.html").substitute(
        prefix=html.escape(prefix),
        version=html.escape(version),
        config_json=json_for_script(page_config(settings, prefix)),
    )


def message_html(title: str, message_html_text: str) -> str:
    """A plain page with a title and one paragraph. ``message_html_text`` must already be safe HTML."""
    return _template("message.html").substitute(title=html.escape(title), message=message_html_text)
