"""The address lists of the security settings: parsed, checked and normalised at start-up.

A typo in one of them would not stop anything but silently change who is trusted: an entry
that is not an address is refused, naming the entry and the form it should take.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from urllib.parse import urlsplit

_HOST_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*")


def comma_or_json_list(value: Any) -> Any:
    """``a,b`` or a JSON list of strings (``["a", "b"]``) as a list; anything else is left to the model."""
    if not isinstance(value, str):
        return value
    if value.strip().startswith("["):
        try:
            items = json.loads(value)
        except ValueError:  # not JSON: "[::1]", an address
            items = None
        if isinstance(items, list):
            if not all(isinstance(item, str) for item in items):
                raise ValueError('is not a JSON list of strings: write a,b or ["a", "b"]')
            return [item.strip() for item in items if item.strip()]
    return [item.strip() for item in value.split(",") if item.strip()]


def trusted_proxies(entries: list[str]) -> list[str]:
    """Each entry an IP address or network (``10.0.0.1``, ``10.0.0.0/8``), or ``*``; networks normalised."""
    checked = []
    for entry in entries:
        if entry == "*":
            checked.append(entry)
            continue
        try:  # strict: 192.168.1.10/16 is a typo of an address or of a network, not a wish to trust 65,536 hosts
            network = ipaddress.ip_network(entry)
        except ValueError:
            raise ValueError(
                f"{entry!r} is not an IP address or network: write 10.0.0.1 or 10.0.0.0/8 (no host bits set), "
                "or * alone to trust any"
            ) from None
        checked.append(str(network.network_address) if network.num_addresses == 1 else str(network))
    if "*" in checked and len(checked) > 1:
        raise ValueError("* trusts any address: give it alone, or list the proxies' addresses")
    return checked


def allowed_hosts(entries: list[str]) -> list[str]:
    """Each entry a host name or IP address as a Host header names it (no port), or ``*``."""
    checked = []
    for entry in entries:
        name = entry.lower().rstrip(".")  # a Host header names ccproxy.lan, not ccproxy.lan.
        if name != "*" and not _HOST_NAME.fullmatch(name) and not _is_ip(name.strip("[]")):
            raise ValueError(
                f"{entry!r} is not a host name: write a name or address without scheme or port "
                "(ccproxy.example, 10.0.0.5, [::1]), or * to accept any"
            )
        checked.append(name)
    return checked


def origins(entries: list[str]) -> list[str]:
    """Each entry an origin (``scheme://host[:port]``, no path) or ``*``; lower case, no trailing slash."""
    for origin in entries:
        parts = urlsplit(origin.rstrip("/"))
        is_origin = parts.scheme in ("http", "https") and parts.netloc and not (parts.path or parts.query)
        if origin != "*" and not is_origin:
            raise ValueError(
                f"{origin!r} is not an origin: write scheme://host[:port], no path, e.g. https://app.example"
            )
    return [origin.rstrip("/").lower() for origin in entries]


def is_dns_name_or_ip(host: str) -> bool:
    """An IP address, or a name a resolver can look up: its IDNA form is labels of letters, digits, '-' and '_'
    between single dots, each of 1 to 63 characters (a trailing dot allowed)."""
    if _is_ip(host):
        return True
    try:
        encoded = host.encode("idna").decode("ascii")
    except UnicodeError:  # an empty label (a..b, .a) or one over 63 characters
        return False
    return bool(encoded) and _DNS_NAME.fullmatch(encoded.removesuffix(".")) is not None


_DNS_NAME = re.compile(r"[A-Za-z0-9_-]{1,63}(?:\.[A-Za-z0-9_-]{1,63})*")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
