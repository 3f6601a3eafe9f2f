"""Start-up checks: say early, in the server log, why the dashboard would be empty or broken."""

from __future__ import annotations

import logging

from ccproxy_core.runtime.settings import Settings
from ccproxy_dashboard import bundle

log = logging.getLogger("ccproxy.dashboard")


def warn_about_gaps(settings: Settings) -> None:
    """Log one line per thing the dashboard needs that is missing; never stop start-up for it."""
    if missing := bundle.missing_entry_files():
        log.error(
            "dashboard bundle not built (missing %s in %s); /dashboard answers 503 until you run `%s` (or `%s`)",
            ", ".join(missing),
            bundle.STATIC_DIR,
            bundle.BUILD_COMMAND,
            bundle.BUILD_COMMAND_LONG,
        )
    observability = settings.observability
    collecting = getattr(observability, "logs_collection_enabled", False)
    if not getattr(observability, "logs_endpoints_enabled", False):
        log.warning(
            "dashboard has no data: set OBSERVABILITY__LOGS_ENDPOINTS_ENABLED=true to serve /logs%s",
            "" if collecting else ", and OBSERVABILITY__LOGS_COLLECTION_ENABLED=true to keep its history",
        )
    elif not collecting:
        log.warning("dashboard shows only the live feed: set OBSERVABILITY__LOGS_COLLECTION_ENABLED=true for history")
