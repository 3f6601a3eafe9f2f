"""A plugin's say on a proxied request before it is forwarded: let it through, add headers, or refuse it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Admission:
    """What ``admit_request`` returns.

    With ``refuse_status`` set, ccproxy answers the request itself, without forwarding it,
    with that status and an error body in the provider's own shape, carrying ``error_type``
    (``None``: the provider's usual type for that status) and ``message``. ``headers`` go on
    the response either way (names in lower case, values plain ASCII, never a secret).
    """

    refuse_status: int | None = None
    error_type: str | None = None
    message: str = ""
    headers: tuple[tuple[str, str], ...] = ()
