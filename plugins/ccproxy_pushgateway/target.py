"""Where to push: the Pushgateway URL without its credentials, and how to send them.

``OBSERVABILITY__PUSHGATEWAY_URL`` may carry ``user:password@``. The credentials are
taken out of the URL once, here; every log line and error message uses
:attr:`PushTarget.display_url`, in which they are masked.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from ccproxy_core.plugin_host.plugin_settings import section_values
from ccproxy_core.safe_values import redact_secrets
from ccproxy_pushgateway.deadline import Handler, deadline_handler
from ccproxy_pushgateway.settings import PushgatewaySettings

if TYPE_CHECKING:
    from ccproxy_core.runtime.settings import Settings

MASK = "***"
# What http.client refuses in a URL (InvalidURL): every push would fail.
_UNSENDABLE = re.compile(r"[\x00-\x20\x7f]")
_HALF_SCHEME = re.compile(r"https?:(?!//)", re.IGNORECASE)
_USERINFO_IN_PATH = re.compile(r"[^/]*@")


@dataclass(frozen=True, slots=True)
class PushTarget:
    """A Pushgateway to push to."""

    url: str
    """The URL without credentials: what the HTTP request goes to."""
    display_url: str
    """The URL with any credentials masked: the only form that may be logged."""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def handler(self) -> Handler:
        """The ``handler`` argument for ``prometheus_client.push_to_gateway``: a push that ends by its
        timeout whatever the gateway does, with basic auth when configured."""
        return deadline_handler(self.username, self.password)


def parse_push_url(raw_url: str) -> PushTarget:
    """Split ``raw_url`` into a credential-free URL and its basic-auth credentials.

    A URL without a scheme gets ``http://``. Raises ``ValueError`` with a message that
    never repeats the credentials.
    """
    text = raw_url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    userinfo, has_userinfo, host_and_port = parts.netloc.rpartition("@")
    # A typo (``http:/user:pw@host``) leaves credentials in the path: masked there too.
    shown_path = _USERINFO_IN_PATH.sub(f"{MASK}@", parts.path)
    display_url = redact_secrets(  # and a key pasted into the path
        urlunsplit((parts.scheme, f"{MASK}@{host_and_port}" if has_userinfo else host_and_port, shown_path, "", ""))
    )
    if _HALF_SCHEME.match(raw_url.strip()) or "@" in parts.path:
        raise ValueError(
            "OBSERVABILITY__PUSHGATEWAY_URL is not a URL as written (credentials go before the host, "
            f"as in http://user:password@pushgateway:9091), got {display_url}"
        )
    if parts.scheme not in ("http", "https") or not host_and_port:
        raise ValueError(
            f"OBSERVABILITY__PUSHGATEWAY_URL must be an http:// or https:// URL with a host, got {display_url}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"OBSERVABILITY__PUSHGATEWAY_URL must not have a query or fragment, got {display_url}")
    _check_sendable(parts, display_url)
    url = urlunsplit((parts.scheme, host_and_port, parts.path, "", ""))
    if not has_userinfo:
        return PushTarget(url=url, display_url=display_url)
    username, _, password = userinfo.partition(":")
    return PushTarget(url=url, display_url=display_url, username=unquote(username), password=unquote(password))


def _check_sendable(parts: SplitResult, display_url: str) -> None:
    """Refuse here what would otherwise make every push fail later with InvalidURL."""
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        raise ValueError(
            f"OBSERVABILITY__PUSHGATEWAY_URL must have a port from 1 to 65535 (the Pushgateway's is 9091), got {display_url}"
        )
    if not parts.hostname or not _is_host(parts.hostname):
        raise ValueError(
            "OBSERVABILITY__PUSHGATEWAY_URL must name a host (a DNS name or an IP address, "
            f"as in http://pushgateway:9091), got {display_url}"
        )
    if _UNSENDABLE.search(parts.path):
        raise ValueError(
            f"OBSERVABILITY__PUSHGATEWAY_URL must not have spaces or control characters in its path, got {display_url}"
        )


def _is_host(host: str) -> bool:
    """An IP address, or a DNS name: letters, digits, '-' and '_' between dots."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        labels = host.removesuffix(".").split(".")
        return all(label and all(char.isalnum() or char in "-_" for char in label) for label in labels)
    return True


def grouping_key(settings: Settings) -> dict[str, str]:
    """The grouping key that keeps several ccproxy instances apart on one Pushgateway."""
    observability = section_values(settings, PushgatewaySettings)
    instance = observability.pushgateway_instance or f"{socket.gethostname()}:{settings.server.port}"
    return {"instance": instance}
