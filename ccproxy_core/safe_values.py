"""Values from outside made safe once, where they enter: every later reader can trust a record.

Clients send the method, path, query, headers and JSON body; providers send headers, models,
error texts and numbers. Any of them may be hostile: invalid UTF-8, lone UTF-16 surrogates
(valid in JSON, unencodable as UTF-8), control characters that forge log lines or break a
terminal, megabytes where a name belongs, ``NaN`` where a number belongs. Here each is turned
into valid, printable, bounded text or a finite number (or ``None``), so DuckDB, Prometheus,
the JSON log and the live stream can never fail on a record.

The length caps are settings (``SERVER__MAX_*_CHARS``, see :class:`ValueCaps`).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ccproxy_core.accounting.record import AccessRecord
from ccproxy_core.key_masking import (
    ELLIPSIS,
    MASK,
    PROVIDER_KEY,
    is_secret_param,
    may_hold_a_key_shape,
    may_name_a_secret,
    without_credentials_in_any_case,
    without_encoded_keys,
    without_key_pieces,
    without_key_shapes,
    without_keys,
)
from ccproxy_core.url_masking import mask_url_userinfo, masked_url

MAX_TOKEN_COUNT = 2**40
"""Token counts above this (a trillion; a batch's results sum to some 10^11 at most) are nonsense: ``None``.
Eight million records at this count still sum within a 64-bit integer, which ClickHouse's ``sum`` wraps past."""
MAX_USD = Decimal(10) ** 9
"""Costs at or above a billion dollars per request are nonsense: ``None``."""

FORMAT_CHARS = (
    "\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)
"""The Unicode format characters (category Cf), as the body of a regex character class.

Bidi overrides, isolates and marks (U+202A..U+202E, U+2066..U+2069, U+200E, U+200F) make a
log viewer, terminal or page show the rest of a line reversed; zero-width ones hide text.
"""
# C0 and C1 control characters, DEL, the Unicode line and paragraph separators, lone surrogates, format characters.
_UNSAFE_CHARS = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff{FORMAT_CHARS}]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Each name and scheme is matched from the start of its run of characters only (the lookbehinds):
# tried from every position of a long run, these patterns took time growing with the square of
# its length (1.5 s for a 4,000-character provider error message, on the event loop).
_NAME_BEFORE_EQUALS = re.compile(r"(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]+=")
_PARAM_VALUE = re.compile(r"[^&\s\"'#<>]+")
_BEARER = re.compile(r"\b(Bearer)\s+[A-Za-z0-9._~+/=\-]+", re.IGNORECASE)
_SUBPROTOCOL_KEY = re.compile(r"(openai-insecure-api-key\.)[^\s,;]+", re.IGNORECASE)
"""A key sent as a WebSocket subprotocol (browsers' ephemeral ``ek_`` keys too), whatever its shape."""


@dataclass(frozen=True, slots=True)
class ValueCaps:
    """Longest text kept per kind of value; longer text is cut and ends with an ellipsis."""

    model: int = 256
    user_agent: int = 512
    request_id: int = 128
    path: int = 2048
    query: int = 2048
    error_type: int = 64
    error_message: int = 1000
    """Error messages are also rid of secrets and URL credentials."""

    @classmethod
    def from_settings(cls, server: Any) -> ValueCaps:
        """The caps configured in ``ServerSettings`` (``SERVER__MAX_*_CHARS``)."""
        return cls(
            model=server.max_model_chars,
            user_agent=server.max_user_agent_chars,
            request_id=server.max_request_id_chars,
            path=server.max_path_chars,
            query=server.max_query_chars,
            error_message=server.max_error_message_chars,
        )


DEFAULT_CAPS = ValueCaps()


def safe_text(value: str, cap: int) -> str:
    """``value`` as printable text of at most ``cap`` characters.

    Lone surrogates become U+FFFD; control and format characters become visible escapes
    (``\\n``, ``\\x1b``, ``\\u202e``); text longer than ``cap`` is cut and ends with an ellipsis.
    """
    if len(value) <= cap and value.isprintable():  # nearly always: one C pass, no copy
        return value
    text = _UNSAFE_CHARS.sub(_escape, value[: cap + 1])
    return text if len(text) <= cap else text[: cap - 1] + ELLIPSIS


def escaped(value: str) -> str:
    """``value`` with control and format characters as the visible escapes :func:`safe_text` writes, uncut."""
    return _UNSAFE_CHARS.sub(_escape, value)


def safe_optional_text(value: Any, cap: int) -> str | None:
    """:func:`safe_text` for a value that may be missing or not text at all (then ``None``)."""
    return safe_text(value, cap) if isinstance(value, str) else None


def text_from_bytes(raw: bytes, cap: int) -> str:
    """Bytes from the wire as safe text; invalid UTF-8 sequences become U+FFFD."""
    return safe_text(raw[: cap * 4 + 4].decode("utf-8", "replace"), cap)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def new_request_id() -> str:
    """128 random bits in hex, like ``uuid4().hex``, in a fifth of the time and without a system call.

    uuid4() reads os.urandom, a system call that also hands the GIL to any busy background
    thread (the DuckDB writer). Ids need to be unique, not secret; ``random`` is seeded
    from os.urandom and re-seeded after fork.
    """
    return f"{random.getrandbits(128):032x}"


def redact_query(raw: bytes | str, cap: int) -> str:
    """A query string for a record: valid text, secret-looking parameters' values replaced by ``***``."""
    query = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if may_name_a_secret(query):
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(name, MASK if is_secret_param(name) else value) for name, value in pairs], safe="*")
    return safe_text(query, cap)


def redact_secrets(text: str) -> str:
    """``text`` with credentials masked: secret-looking ``name=value`` pairs, URL userinfo, API keys, Bearer tokens.

    For free text that may quote a URL, such as the upstream client's own error messages.
    """
    text = _mask_secret_params(text) if "=" in text else text
    text = mask_url_userinfo(text) if "@" in text or text.endswith(ELLIPSIS) else text
    text = without_key_shapes(PROVIDER_KEY.sub("sk-" + MASK, text))  # and keys glued to a word (Bearersk-...)
    text = _SUBPROTOCOL_KEY.sub(lambda m: m.group(1) + MASK, text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)


def _mask_secret_params(text: str) -> str:
    """``text`` with the value of every secret-looking ``name=value`` pair masked, in one pass."""
    pieces, done = [], 0
    for name in _NAME_BEFORE_EQUALS.finditer(text):
        if name.start() < done or not is_secret_param(name.group()):
            continue  # inside a value already masked, or not a secret's name
        value = _PARAM_VALUE.match(text, name.end())
        if value is not None:
            pieces += [text[done : name.end()], MASK]
            done = value.end()
    return "".join(pieces) + text[done:] if pieces else text


SHOWN_SETTING_CHARS = 200
"""Most characters of a bad setting's value that its error line shows."""


def shown_setting_value(name: str, value: object) -> str:
    """A bad setting's value as an error line may show it: never a credential, not even a wrong one; cut when long."""
    if isinstance(value, dict):
        return "(missing)"
    if is_secret_param(name):
        return "'***'"
    if isinstance(value, list | tuple):  # where a section or a table belongs: it may hold anything, keys too
        return "(a list)"
    if not isinstance(value, str):
        return safe_text(repr(value), SHOWN_SETTING_CHARS)
    # Cut before redacting, to bound its work; the ellipsis tells it a URL may run on past the cut.
    text = masked_url(value)
    cut = text[: SHOWN_SETTING_CHARS * 2] + (ELLIPSIS if len(text) > SHOWN_SETTING_CHARS * 2 else "")
    shown = repr(redact_secrets(cut)[:SHOWN_SETTING_CHARS])
    return shown if len(value) <= SHOWN_SETTING_CHARS else f"{shown}... ({len(value)} characters)"


def safe_error_text(text: str, cap: int) -> str:
    """An error message fit for a record, a log line or a client: no secret, printable, bounded."""
    if len(text) > cap * 2:  # bounds the work; the ellipsis tells the masking a URL may go on past the cut
        text = text[: cap * 2] + ELLIPSIS
    return safe_text(redact_secrets(text), cap)


def finite_float(value: Any) -> float | None:
    """A float that JSON, Prometheus and DuckDB all take; ``NaN`` and infinities become ``None``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


_PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A number as HTTP headers write them: Python's own parsers also take ``1_000``, ``٣`` and ``nan``."""


def decimal_from_header(value: str | None) -> Decimal | None:
    """A money amount from a provider header; ``NaN``, ``sNaN``, infinities and absurd sizes are ``None``."""
    text = (value or "").strip()[:64]
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    try:
        number = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    return finite_money(number)


def number_from_header(value: bytes) -> float | None:
    """A count or limit from a provider header (``1000``, ``12.5``), or ``None``."""
    if value.isdigit():  # the usual whole count; ASCII digits only, as bytes.isdigit takes no others
        return float(value) if len(value) <= 64 else None
    text = value.decode("latin-1").strip()
    if len(text) > 64 or not _PLAIN_NUMBER.fullmatch(text):
        return None
    return finite_float(text)


def finite_money(value: Decimal | None) -> Decimal | None:
    """``value`` when it is a finite amount below :data:`MAX_USD` (either sign), else ``None``."""
    if value is None:
        return None
    try:
        return value if value.is_finite() and abs(value) < MAX_USD else None
    except InvalidOperation:  # abs() of a signalling NaN
        return None


def token_count(value: int | None) -> int | None:
    """A token count between 0 and :data:`MAX_TOKEN_COUNT`, else ``None``."""
    return value if value is None or (type(value) is int and 0 <= value <= MAX_TOKEN_COUNT) else None


_MONEY_FIELDS = (
    "cost_usd",
    "cost_sdk_usd",
    "cost_input_usd",
    "cost_output_usd",
    "cost_cache_read_usd",
    "cost_cache_write_usd",
    "cost_tools_usd",
)
_COST_PARTS = _MONEY_FIELDS[2:]  # the line items of cost_usd
_COUNT_FIELDS = ("tokens_input", "tokens_output", "cache_read_tokens", "cache_write_tokens")


def safe_record(
    record: AccessRecord, caps: ValueCaps = DEFAULT_CAPS, credentials: tuple[str, ...] = ()
) -> AccessRecord:
    """``record`` with every provider-derived value made safe (the request's own were made safe on arrival).

    ``credentials`` are the keys sent with the request: a provider value that echoes one (its error,
    the model or request id it reports, whatever the key looks like) gets it masked, as does a key
    the client put in its path, its query string or its requested model. Returns ``record`` itself when nothing needed changing,
    which is nearly always.
    """
    changes: dict[str, Any] = {}
    if credentials and record.model is not None:
        _check_text(changes, "model", record.model, caps.model, credentials)
    _check_text(changes, "response_model", record.response_model, caps.model, credentials)
    for name in ("query", "path"):  # the client's own text (its other fields were masked on arrival, by attribution)
        value = getattr(record, name)
        if credentials and isinstance(value, str):
            masked = without_keys(credentials, value)
            if name == "query":
                masked = without_encoded_keys(credentials, masked)
            if masked != value:
                changes[name] = masked
    if record.error_type is not None:
        error_type = record.error_type
        if isinstance(error_type, str):
            error_type = safe_text(redact_secrets(_without_any_of(credentials, error_type)), caps.error_type)
        else:
            error_type = None
        if error_type != record.error_type:
            changes["error_type"] = error_type
    for name in ("upstream_request_id", "service_tier", "speed", "finish_reason"):
        _check_text(changes, name, getattr(record, name), caps.request_id, credentials)
    if record.error_message is not None:
        # Percent-encoded too: ccproxy's own 404 names the path as sent, escapes and all.
        unkeyed = without_encoded_keys(credentials, _without_any_of(credentials, record.error_message))
        message = safe_error_text(unkeyed, caps.error_message)
        if message != record.error_message:
            changes["error_message"] = message
    for name in _MONEY_FIELDS:
        value = getattr(record, name)
        if value is not None and (finite_money(value) is None or value < 0):  # no charge is negative
            changes[name] = None
    for name in _COUNT_FIELDS:
        value = getattr(record, name)
        if value is not None and token_count(value) is None:
            changes[name] = None  # a sum past any answer's count (a batch's results): its price is no bill either
            changes["cost_usd"] = None
    if record.priced and "cost_usd" in changes:  # too large to be a real charge: not a known price
        changes.update(dict.fromkeys(_COST_PARTS, None), cost_usd=None, priced=False)
    if record.rate_limits:
        limits = _safe_rate_limits(record.rate_limits)
        if limits != record.rate_limits:
            changes["rate_limits"] = limits
    # Another key than the request's, in a name or an id: nearly never, so one search looks at them all first.
    if may_hold_a_key_shape(_key_shaped_text(record)):
        for name in _KEY_SHAPED_FIELDS:
            value = changes.get(name, getattr(record, name))
            if isinstance(value, str) and (masked := without_key_shapes(value)) != value:
                changes[name] = masked
    return dataclasses.replace(record, **changes) if changes else record


def _without_any_of(credentials: tuple[str, ...], error: str) -> str:
    """An error text without the request's keys, whole or in pieces: a provider's error is where a key
    it refused is quoted, cut short or in other capitals."""
    return without_key_pieces(credentials, without_keys(credentials, error)) if credentials else error


def _key_shaped_text(record: AccessRecord) -> str:
    """The fields a key may hide in, as one text: one search over it costs less than one per field."""
    return (
        f"{record.model}{record.response_model}{record.path}{record.query}"
        f"{record.upstream_request_id}{record.service_tier}{record.speed}{record.finish_reason}"
    )


_KEY_SHAPED_FIELDS = (
    "model",
    "response_model",
    "path",
    "query",
    "upstream_request_id",
    "service_tier",
    "speed",
    "finish_reason",
)


def _check_text(changes: dict[str, Any], name: str, value: str | None, cap: int, credentials: tuple[str, ...]) -> None:
    if value is not None:
        # Key shapes are masked before the cut, which could leave a key's start too short to know it by.
        text = (
            without_key_shapes(without_credentials_in_any_case(credentials, value)[: cap + 512])
            if isinstance(value, str)
            else None
        )
        safe = safe_text(text, cap) if text is not None else None
        if credentials and safe is not None and safe.endswith(ELLIPSIS):  # cut to its cap, maybe inside a key
            safe = without_keys(credentials, safe, any_case=True)
        if safe != value:
            changes[name] = safe


def _safe_rate_limits(limits: Mapping[str, float]) -> dict[str, float]:
    safe = {}
    for key, value in limits.items():
        number = finite_float(value)
        if number is not None and number >= 0 and isinstance(key, str):  # no limit or headroom is negative
            safe[safe_text(key, 64)] = number
    return safe
