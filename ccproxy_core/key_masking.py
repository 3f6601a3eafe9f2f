"""Keys kept out of recorded text: the request's own, whatever they look like, and any shaped as the providers' are."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, quote_plus, unquote, unquote_plus

ELLIPSIS = "\u2026"
MASK = "***"
PROVIDER_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-*]{3,}")
"""Anything that starts like OpenAI's and Anthropic's keys, for free text such as error messages."""
KEY_SHAPE = re.compile(
    # OpenAI's, Anthropic's and OpenRouter's keys, wherever they stand (glued, after "key%3D"): names such
    # as "kiosk-proj-frontend" or "desk-admin-console-production-eu" are far shorter than a key after its
    # prefix (64 characters and more). Header names arrive lowercased.
    r"sk-(?i:proj|ant|svcacct|admin|none|or)-[A-Za-z0-9_\-]{40,}"
    # The same with its prefix in capitals (SK-ANT-), only at a word's start: "RISK-ADMIN-dashboard-..." is a name.
    r"|(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))(?i:sk-(?:proj|ant|svcacct|admin|none|or))-[A-Za-z0-9_\-]{20,}"
    # OpenAI's older keys (sk- and 48 letters and digits), and others' of that shape, at a word's start
    # (or after a %-escape, as a query string keeps them): "task-" and 20 letters is a name.
    r"|(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{2}))(?i:sk)-[A-Za-z0-9]{20,}"
)
"""A key as the providers issue them, in a name or an id: not a name that merely holds ``sk-`` (a project
``eshop-sk-prod``, a fine-tune suffix ``sk-triage``). Its prefix in any case: ``SK-ANT-`` and the key's body
is still the key's secret part."""
_PREFIXES = ("sk-", "SK-", "Sk-", "sK-")
PUBLIC_KEY_PREFIX = re.compile(r"^sk-(?:[a-z]+-)?(?:api\d+-)?", re.IGNORECASE)
"""What every key of a kind begins with (``sk-ant-api03-``, ``sk-proj-``): no secret is in it."""


def may_hold_a_key_shape(text: str) -> bool:
    """Whether ``text`` holds a key's prefix (in any case): a cheap test before :data:`KEY_SHAPE`'s search."""
    # Every prefix holds "k-" or "K-": two C searches settle nearly every text without the loop.
    return ("k-" in text or "K-" in text) and any(prefix in text for prefix in _PREFIXES)


def without_key_shapes(text: str) -> str:
    """``text`` with whatever has the shape of a provider's API key (:data:`KEY_SHAPE`) masked, whoever's
    key it is; the request's own keys are masked whatever their shape (:func:`without_keys`)."""
    return KEY_SHAPE.sub("sk-" + MASK, text) if may_hold_a_key_shape(text) else text


@lru_cache(maxsize=256)
def with_secret_parts(credentials: tuple[str, ...]) -> tuple[str, ...]:
    """``credentials``, then the secret parts of those shaped as the providers' keys: what follows ``sk-`` and
    each of up to two prefix words after it (``sk-ant-api03-``, ``sk-ant-oat01-``, ``sk-proj-``, ``sk-or-v1-``),
    longest first, when :data:`SHORTEST_SECRET_PART` characters or more. A client may send the secret without
    its prefix, and that is the key all the same; a shorter rest may be words a model name shares (a
    gateway's ``sk-team-claude-sonnet-4-5-Prod``), masked only with its prefix. Whole keys come first, so a
    whole key is masked as one."""
    parts = [part for key in credentials for part in _secret_parts(key) if part not in credentials]
    return (*credentials, *dict.fromkeys(parts)) if parts else credentials


def _secret_parts(key: str) -> list[str]:
    if key[:3].lower() != "sk-":
        return []
    rest, parts = key[3:], [key[3:]]
    for _ in range(2):
        if (word := _PREFIX_WORD.match(rest)) is None:
            break
        rest = rest[word.end() :]
        parts.append(rest)
    return [part for part in parts if len(part) >= SHORTEST_SECRET_PART]


_PREFIX_WORD = re.compile(r"[a-z]+[0-9]*-", re.IGNORECASE)
SHORTEST_SECRET_PART = 32
"""A key's rest after its prefix shorter than this is not looked for alone (the providers' are 40 to 150)."""


def without_credentials(credentials: tuple[str, ...], text: str) -> str:
    """``text`` with every key of ``credentials`` (and its secret part, :func:`with_secret_parts`) masked where
    it appears whole."""
    for key in with_secret_parts(credentials):
        text = text.replace(key, MASK)
        if not key.isprintable():  # recorded text has its control characters escaped ("\\t" for a tab), or made "?"
            from ccproxy_core.safe_values import escaped  # which builds on this module

            text = text.replace(escaped(key), MASK).replace(_printable(key), MASK)
    return text


def without_credentials_in_any_case(credentials: tuple[str, ...], text: str) -> str:
    """``text`` with every key of ``credentials`` masked where it appears whole, in any case: a name a provider
    reports may be the key it was sent, in capitals. (Not in pieces: a key made of words, such as
    ``sk-team-claude-sonnet-4-5-Prod``, shares them with the model names a record must keep.)"""
    text = without_credentials(credentials, text)
    lowered = text.lower()
    for key in with_secret_parts(credentials):
        if len(key) >= SHORTEST_MASKED_KEY and key.lower() in lowered:
            text = re.sub(re.escape(key), MASK, text, flags=re.IGNORECASE)
    return text


def without_keys(credentials: tuple[str, ...], text: str, any_case: bool = False) -> str:
    """``text`` with every key of ``credentials`` masked, and a key cut short where ``text`` was cut to its cap
    (``any_case``: that cut key in other capitals too, as a provider may report a key it was sent)."""
    text = without_credentials(credentials, text)
    # Cut to its cap (with an ellipsis or, for a parsed part such as a client's version, without).
    kept, cut = (text[:-1], ELLIPSIS) if text.endswith(ELLIPSIS) else (text, "")
    lowered = any_case and len(kept.lower()) == len(kept)  # else a character's case would shift the positions
    searched = kept.lower() if lowered else kept
    for secret in with_secret_parts(credentials):
        key = secret.lower() if lowered else secret
        window = max(0, len(kept) - len(key))  # a key cut at the end begins within its length of it
        start = searched.rfind(key[:_SHORTEST_CUT_KEY], window)
        while start >= 0:
            if key.startswith(searched[start:]):
                return kept[:start] + MASK + cut
            start = searched.rfind(key[:_SHORTEST_CUT_KEY], window, start + _SHORTEST_CUT_KEY - 1)
    return text


def without_any_key(credentials: tuple[str, ...], text: str) -> str:
    """``text`` for a log line: the request's keys masked whole, cut short or in pieces in any case
    (:func:`without_key_pieces`), and any key of a provider's shape in any case (:func:`without_key_shapes`)."""
    if credentials:
        text = without_key_pieces(credentials, without_keys(credentials, text))
    return without_key_shapes(text)


def without_encoded_keys(credentials: tuple[str, ...], query: str) -> str:
    """``query`` (a query string as sent) with the keys of ``credentials`` it holds percent-encoded masked; all
    of it masked when one is still readable once decoded (escapes in another case, say)."""
    if "%" not in query and "+" not in query:
        return query
    credentials = with_secret_parts(credentials)
    for key in credentials:
        if not _URL_SAFE.fullmatch(key):
            for form in {quote(key, safe=""), quote_plus(key, safe="")}:
                query = query.replace(form, MASK)
    decoded = (unquote(query), unquote_plus(query))  # a "+" may be the key's own, or an escaped space
    return MASK if any(key in text for key in credentials for text in decoded) else query


def without_key_pieces(credentials: tuple[str, ...], text: str) -> str:
    """``text`` with every run of :data:`SHORTEST_MASKED_KEY` or more characters of a key's secret part masked,
    in any case: a provider's error may quote the key it refused cut short, or in other capitals.

    Only the pieces of keys that look random are looked for: a secret part of :data:`SHORTEST_PIECED_SECRET`
    characters or more, holding a digit or a capital letter. A placeholder key (``sk-no-key-required``) shares
    words with ordinary error text, and those words must stay.
    """
    lowered = text.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer ("İ"): each keeps its place
        lowered = "".join(char if len(lower := char.lower()) != 1 else lower for char in text)
    spans: list[tuple[int, int]] = []
    for key in credentials:
        runs = _runs_of(key)
        start = 0
        while runs and start + SHORTEST_MASKED_KEY <= len(lowered):
            if lowered[start : start + SHORTEST_MASKED_KEY] not in runs:
                start += 1
                continue
            end = start + SHORTEST_MASKED_KEY
            while end < len(lowered) and lowered[end + 1 - SHORTEST_MASKED_KEY : end + 1] in runs:
                end += 1
            spans.append((start, end))
            start = end
    kept, position = [], 0
    for start, end in sorted(spans):  # two keys' pieces may overlap: masked once, as one
        if end > position:
            kept.append(text[position:start] + MASK if start >= position else "")
            position = end
    return "".join(kept) + text[position:] if kept else text


@lru_cache(maxsize=256)
def _runs_of(key: str) -> frozenset[str]:
    """Every :data:`SHORTEST_MASKED_KEY` characters in a row of ``key``'s secret part, lowercased; none for a
    key that does not look random (see :func:`without_key_pieces`)."""
    secret = PUBLIC_KEY_PREFIX.sub("", key, count=1)
    if len(secret) < SHORTEST_PIECED_SECRET or not _RANDOM_LOOKING.search(secret):
        return frozenset()
    return frozenset(secret[i : i + SHORTEST_MASKED_KEY].lower() for i in range(len(secret) - SHORTEST_MASKED_KEY + 1))


SHORTEST_PIECED_SECRET = 20
"""Keys whose secret part is shorter are masked whole only: their pieces could be words."""
_RANDOM_LOOKING = re.compile(r"[0-9A-Z]")


_URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]*")
"""Characters a query string holds as they are: a key made of them alone is found as it is."""


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


SHORTEST_MASKED_KEY = 8
"""Keys shorter than this are not looked for in recorded text: they would mask ordinary words."""
_SHORTEST_CUT_KEY = 8
"""The fewest characters of a key, left at a cut, that are masked."""


_TOKEN_COUNT = re.compile(
    r"(?:max|min|input|output|prompt|completion|total|reasoning|cached|budget)(?:_[a-z]+)?_tokens"
)
"""A count of tokens (``max_tokens``, ``max_output_tokens``), which error messages quote: not a secret."""
SECRET_PARAM_WORDS = ("key", "token", "secret", "pass", "pw", "auth", "sig", "credential", "session", "jwt", "cookie")
"""A query parameter whose name contains one of these has its value replaced by ``***``."""


def query_secrets(raw: bytes, shortest: int) -> tuple[str, ...]:
    """The values of a query string's secret-looking parameters (Azure's ``?api-key=``) of at least
    ``shortest`` characters, as sent and decoded: a provider may echo them like any key the request carries."""
    query = raw.decode("utf-8", "replace")
    if not may_name_a_secret(query):
        return ()
    found = []
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if is_secret_param(unquote_plus(name)):  # as sent and as decoded: a provider may echo either
            found += [form for form in dict.fromkeys((value, unquote_plus(value))) if len(form) >= shortest]
    return tuple(found)


def may_name_a_secret(query: str) -> bool:
    """Whether a query string may hold a secret-looking name (a percent-encoded one may hide its words)."""
    return bool(query) and ("%" in query or any(word in query.lower() for word in SECRET_PARAM_WORDS))


def is_secret_param(name: str) -> bool:
    """True when a parameter named ``name`` probably carries a credential."""
    lower = name.lower().rstrip("=")
    return any(word in lower for word in SECRET_PARAM_WORDS) and not _TOKEN_COUNT.fullmatch(lower)
