"""Price corrections: rules genai-prices lacks, shipped with ccproxy or added by the operator.

The format is described at the top of ``price_corrections.toml`` (the built-in table) and in
docs/records.md. A bad file stops start-up with one line naming the setting and the entry.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from genai_prices.types import ModelPrice, Tier, TieredPrices

from ccproxy_core.errors import SettingsError

BUILT_IN = Path(__file__).with_name("price_corrections.toml")
PRICE_KEYS = frozenset(
    {
        "input_mtok",
        "output_mtok",
        "cache_read_mtok",
        "cache_write_mtok",
        "cache_write_1h_mtok",
        "input_audio_mtok",
        "cache_audio_read_mtok",
        "output_audio_mtok",
        "input_image_mtok",
        "cache_image_read_mtok",
        "output_image_mtok",
        "web_searches_kcount",
        "requests_kcount",
    }
)
MAX_PRICE = Decimal(10) ** 6
"""A price at or above a million dollars (per million tokens, per thousand searches, ...) is no
provider's: the costs it gives would be refused as nonsense (``safe_values.MAX_USD``), leaving the
model unpriced without a word, so the file is refused instead."""
_DESCRIPTIVE_KEYS = frozenset({"provider", "model", "when", "source", "published"})
PROVIDER_IDS = ("anthropic", "openai")
"""The genai-prices provider ids answers are priced by (each provider's ``price_id``)."""
CONTEXT_KEYS = ("inference_geo", "processing", "service_tier", "speed")
"""What an answer's price context may hold (each provider's ``price_context``): a ``when`` naming
anything else would never match, and the correction would never apply."""
# A dated snapshot of a model: Anthropic's ``claude-mythos-5-20261101``, OpenAI's ``gpt-4o-2024-08-06``.
_SNAPSHOT_DATE = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")

Price = Decimal | TieredPrices


@dataclass(frozen=True, slots=True)
class PriceCorrection:
    """Prices that replace genai-prices' own for one model when ``when`` matches the price context."""

    provider: str
    model: str
    when: Mapping[str, str]
    prices: Mapping[str, Price]
    source: str = ""

    def applies(self, provider: str, model_ids: tuple[str, ...], context: Mapping[str, str]) -> bool:
        return (
            provider == self.provider
            and self.model in model_ids
            and all(context.get(key) == value for key, value in self.when.items())
        )


def correction_names(known_id: str | None, model: str) -> tuple[str, ...]:
    """The names a correction may give for ``model``: genai-prices' id of it when it knows it, else also
    the name without a snapshot date (``claude-mythos-5-20261101`` -> ``claude-mythos-5``). A model it
    knows keeps its own prices for each snapshot: ``gpt-4o-2024-05-13`` is not ``gpt-4o``."""
    if known_id is not None:
        return (known_id, model)
    found = _SNAPSHOT_DATE.search(model)
    return (model, model[: found.start()]) if found is not None and found.start() > 0 else (model,)


def load_corrections(operator_file: str | None) -> tuple[PriceCorrection, ...]:
    """The built-in corrections, then the operator's (later entries win, key by key)."""
    corrections = _read_file(BUILT_IN, "the built-in price corrections")
    if operator_file:
        path = Path(operator_file).expanduser()
        corrections += _read_file(path, f"UPSTREAM__PRICE_CORRECTIONS_FILE={path}")
    return corrections


def apply_corrections(
    base: ModelPrice | None,
    corrections: tuple[PriceCorrection, ...],
    provider: str,
    model: tuple[str | None, str],
    context: Mapping[str, str],
) -> ModelPrice | None:
    """``base`` with every matching correction applied; a model genai-prices lacks needs input and output prices.

    ``model`` is genai-prices' id of the model (``None`` when it lacks it) and the name the answer gave.
    In batch processing, a correction that does not name ``processing`` is a list price, and
    both providers bill batches at half the list price (long-context rates included).
    """
    overrides: dict[str, Price] = {}
    model_ids = correction_names(*model)
    batch = context.get("processing") == "batch"
    for correction in corrections:
        if correction.applies(provider, model_ids, context):
            if batch and "processing" not in correction.when:
                overrides.update({key: _halved(price) for key, price in correction.prices.items()})
            else:
                overrides.update(correction.prices)
    if not overrides:
        return base
    if base is None:
        if "input_mtok" not in overrides or "output_mtok" not in overrides:
            return None
        return ModelPrice(**overrides)
    merged = {key: value for key, value in base.__dict__.items() if not key.startswith("_")}
    merged.update(overrides)
    return ModelPrice(**merged)


def _halved(price: Price) -> Price:
    if isinstance(price, TieredPrices):
        tiers = [Tier(start=tier.start, price=tier.price / 2) for tier in price.tiers]
        return TieredPrices(base=price.base / 2, tiers=tiers)
    return price / 2


def _read_file(path: Path, origin: str) -> tuple[PriceCorrection, ...]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise SettingsError(
            f"cannot read {origin}: {exc.strerror}; point the setting at a readable TOML file"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{origin} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"correction"})
    if unknown:  # "[[corrections]]" or "[[prices]]" would be a file that silently corrects nothing
        raise SettingsError(f"{origin}: unknown table {unknown[0]!r}; write each correction as a [[correction]] table")
    entries = data.get("correction", [])
    if not isinstance(entries, list):
        raise SettingsError(f"{origin}: write each correction as a [[correction]] table")
    return tuple(_parse_entry(entry, f"{origin}, correction {number}") for number, entry in enumerate(entries, 1))


def _parse_entry(entry: Any, where: str) -> PriceCorrection:
    if not isinstance(entry, dict):
        raise SettingsError(f"{where}: must be a table")
    unknown = set(entry) - PRICE_KEYS - _DESCRIPTIVE_KEYS
    if unknown:
        allowed = ", ".join(sorted(PRICE_KEYS | _DESCRIPTIVE_KEYS))
        raise SettingsError(f"{where}: unknown key {sorted(unknown)[0]!r}; allowed keys: {allowed}")
    provider, model, when = entry.get("provider"), entry.get("model"), entry.get("when", {})
    if not (isinstance(provider, str) and provider and isinstance(model, str) and model):
        raise SettingsError(
            f'{where}: needs provider and model, such as provider = "anthropic", model = "claude-sonnet-4-0"'
        )
    if provider not in PROVIDER_IDS:
        raise SettingsError(f"{where}: provider {provider!r} prices no answer; use {_one_of(provider, PROVIDER_IDS)}")
    if not isinstance(when, dict) or not all(isinstance(v, str) for v in when.values()):
        raise SettingsError(
            f'{where}: when must map price-context keys to strings, such as when = {{ speed = "fast" }}'
        )
    for key in when:
        if key not in CONTEXT_KEYS:
            raise SettingsError(f"{where}: when names {key!r}, which no answer has; use {_one_of(key, CONTEXT_KEYS)}")
    prices = {key: _parse_price(entry[key], f"{where}, {key}") for key in PRICE_KEYS & set(entry)}
    if not prices:
        raise SettingsError(f"{where}: gives no price; set at least one of {', '.join(sorted(PRICE_KEYS))}")
    return PriceCorrection(provider, model, dict(when), prices, str(entry.get("source", "")))


def _parse_price(value: Any, where: str) -> Price:
    if isinstance(value, dict):
        tiers = value.get("tiers", [])
        if set(value) - {"base", "tiers"} or not isinstance(tiers, list) or not tiers:
            raise SettingsError(
                f'{where}: a tiered price is {{ base = "3", tiers = [{{ start = 200000, price = "6" }}] }}'
            )
        parsed = [_parse_tier(tier, where) for tier in tiers]
        return TieredPrices(base=_decimal(value.get("base"), where), tiers=parsed)
    return _decimal(value, where)


def _parse_tier(tier: Any, where: str) -> Tier:
    if not isinstance(tier, dict) or type(tier.get("start")) is not int or tier["start"] < 0:
        raise SettingsError(f"{where}: each tier needs a whole start >= 0 and a price")
    return Tier(start=tier["start"], price=_decimal(tier.get("price"), where))


def _decimal(value: Any, where: str) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite() or number < 0:
        raise SettingsError(f'{where}: {value!r} is not a price; write USD as a number >= 0, such as "3.75"')
    if number >= MAX_PRICE:
        raise SettingsError(f'{where}: {value!r} is more than any price; write USD below 1000000, such as "3.75"')
    return number


def _one_of(given: str, known: tuple[str, ...]) -> str:
    """The likely name meant, or the list of those allowed."""
    close = difflib.get_close_matches(given, known, n=1)
    return repr(close[0]) if close else "one of " + ", ".join(known)
