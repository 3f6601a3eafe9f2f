"""What a request cost in USD, from its token usage and the genai-prices price list.

genai-prices counts ``input_tokens`` as ALL input tokens, cache reads and writes included, and prices
the cache tokens by subtracting them from that total (``genai_prices.decompose``). ccproxy's ``Usage``
follows Anthropic's convention, where ``input_tokens`` excludes them, so the genai-prices input total
is ``input + cache_read + cache_write``. The same total decides long-context price tiers (e.g. Claude
Sonnet 4.5 above 200K input tokens), as providers do.

The four parts are priced one by one (``usage_prices.py``) with genai-prices' per-unit arithmetic (``calc_unit_price``:
the tiered rate that the input total selects, times the count), so they add up exactly to the total.
Where a model has no separate cache price, its cache tokens are billed, and reported, as input, as
genai-prices bills them. A price per request rather than per token (no Anthropic or OpenAI model has
one) is added to the input part. Server tools billed per use (web and file searches, genai-prices'
``web_searches_kcount`` and ``storage_searches_kcount``, per thousand) are their own part, ``tools``;
a model whose price list has no such price pays the one its provider publishes for every model
(``Provider.tool_use_prices``), and uses that no price prices leave the answer unpriced. Amounts are
exact ``Decimal`` values, never rounded.

The price list is chosen by what the answer says: its service tier (OpenAI ``priority`` and ``flex``,
Anthropic ``batch``) through genai-prices' price variants, and ccproxy's price corrections
(``price_corrections.py``) for rules genai-prices lacks (long-context tiers, fast mode). A tier drawn
from capacity bought ahead (OpenAI's Scale Tier, Anthropic's Priority Tier), a speed whose price the
model's price list does not name, and a tier's answer past a long-context threshold its prices leave
out have no price unless a correction names them (``service_tiers.py``). An answer without token
counts has no known cost: ``None``, never 0.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices.types import ModelInfo, ModelPrice, TieredPrices

from ccproxy_core.accounting.cost_parts import UNPRICED, Cost, Secrets, tokens_scaled
from ccproxy_core.accounting.model_match import another_version
from ccproxy_core.accounting.price_calendar import on_price_calendar
from ccproxy_core.accounting.price_corrections import (
    PriceCorrection,
    apply_corrections,
    correction_names,
    load_corrections,
)
from ccproxy_core.accounting.service_tiers import batch_priced, long_context_unlisted, unpriced_label
from ccproxy_core.accounting.twelve_hour_writes import with_twelve_hour_writes
from ccproxy_core.accounting.usage import Usage
from ccproxy_core.accounting.usage_prices import price_audio_length, price_steps, price_usage
from ccproxy_core.key_masking import without_any_key
from ccproxy_core.providers import PROVIDERS, Provider
from ccproxy_core.safe_values import redact_secrets, safe_text

logger = logging.getLogger(__name__)

MAX_UNPRICED_WARNINGS = 20
"""Distinct unknown models warned about per price book; later ones are logged at DEBUG."""


_NOT_RESOLVED: Any = object()


class PriceBook:
    """Prices usage, remembering which price entry each model name resolved to.

    The app holds one. Model names come from clients, so the memory of them is bounded
    (``max_models``, least recently used first out). An unknown model is logged once
    (as a warning) when its name is first looked up, and again only if it has since
    been pushed out of that memory. A new genai-prices snapshot (``UpdatePrices``)
    clears the memory.

    The prices in force (dated and time-of-day variants, service tiers, corrections) are
    resolved once per model, price context and whole second of the clock, as of that second's
    start: the price list's dates and times of day are whole seconds, so every request is
    priced as if resolved at its own instant, without paying for it again and again.
    """

    def __init__(
        self,
        max_models: int = 1024,
        corrections: tuple[PriceCorrection, ...] | None = None,
        regional: frozenset[str] = frozenset(),
    ) -> None:
        self.corrections = load_corrections(None) if corrections is None else corrections
        self.regional = regional
        """The providers whose answers come from their regional processing hosts (``Provider.regional_uplift``)."""
        self._snapshot = data_snapshot.get_snapshot()
        self._unpriced_warnings = 0
        self._labels_warned: set[tuple[str, str, str]] = set()
        self._find_model = functools.lru_cache(maxsize=max_models)(self._lookup)
        self._warn_unpriced_once = functools.lru_cache(maxsize=max_models)(self._warn_unpriced)
        self._max_models = max_models
        self._resolved: dict[tuple[str, str, tuple[tuple[str, str], ...]], ModelPrice | None] = {}
        self._resolved_second = 0
        self._thresholds: tuple[Any, tuple[int, ...]] | None = None

    def compute(
        self,
        provider: Provider | str,
        model: str | None,
        usage: Usage,
        served: str | None = None,
        secrets: Secrets | None = None,
    ) -> Cost:
        """The cost of ``usage`` on ``model`` at ``provider`` (or its ``service_type``).

        ``served`` is the model the answer says served it (``gpt-4o-2024-08-06`` for ``gpt-4o``):
        the provider bills that one, so it is the one priced; the requested ``model`` only when the
        answer names none. Unpriced (every amount ``None``) when the model priced is unknown (even
        if the requested one is known: its price is not the bill) or the answer reported no tokens.
        ``secrets`` gives the request's keys, kept out of the warning about a model without a price
        (a client may put its key where the model name belongs).
        """
        hidden = _LOG_SECRETS.set(secrets) if secrets is not None else None
        try:
            if usage.service_tier == "batch":  # on a batch's results, or any answer that says so
                return batch_priced(lambda at_tier: self._compute(provider, model, at_tier, served), usage)
            return self._compute(provider, model, usage, served)
        finally:
            if hidden is not None:
                _LOG_SECRETS.reset(hidden)

    def _compute(self, provider: Provider | str, model: str | None, usage: Usage, served: str | None) -> Cost:
        if isinstance(provider, str):
            known = PROVIDERS.get(provider)
            if known is None:
                return UNPRICED
            provider = known
        if not usage.has_measure or usage.bad_counts or usage.unpriced_charge:
            return UNPRICED
        snapshot = data_snapshot.get_snapshot()
        if snapshot is not self._snapshot:
            self._find_model.cache_clear()
            self._warn_unpriced_once.cache_clear()
            self._resolved.clear()
            self._snapshot = snapshot
        if served:
            model = served
        if not model:
            return UNPRICED
        context = provider.price_context(usage)
        model_info = self._find_model(provider.price_id, model)
        prices = self._prices_in_force(provider, model, model_info, context)
        if prices is None or self._past_the_tiers_prices(provider, model, model_info, context, prices, usage):
            return UNPRICED
        if usage.cache_write_1h_tokens and provider.name == "openai":
            prices = with_twelve_hour_writes(prices, model_info.id if model_info is not None else None)
        tool_prices = provider.tool_use_prices
        regional = provider.name in self.regional
        if usage.audio_seconds is not None:
            cost = price_audio_length(prices, usage.audio_seconds)
        elif usage.steps:
            step_prices = functools.partial(self._prices_of, provider, context=context)
            # A regional host bills each model at its own uplift (an SVG's author may be newer than its image model).
            uplift_of = functools.partial(_regional_uplift, provider, model) if regional else None
            cost = price_steps(prices, usage, step_prices, tool_prices, uplift_of)
        else:
            cost = price_usage(prices, usage, tool_prices)
        multiplier = provider.price_multiplier(usage)
        if regional and not usage.steps:
            uplift = provider.regional_uplift(model)
            if uplift is None:
                return UNPRICED
            multiplier = uplift * (multiplier or 1)
        return tokens_scaled(cost, multiplier) if multiplier is not None and cost.priced else cost

    def _past_the_tiers_prices(
        self, provider: Provider, model: str, info: ModelInfo | None, context: dict[str, str], prices: Any, usage: Usage
    ) -> bool:
        """An answer at a tier whose prices leave out the list price's long-context rates, past its threshold."""
        if context.get("service_tier", next(iter(provider.list_price_tiers))) in provider.list_price_tiers:
            return False  # at a list price (or none named): its own long-context rates apply
        listed = self._prices_in_force(provider, model, info, {k: v for k, v in context.items() if k != "service_tier"})
        return long_context_unlisted(prices, listed, usage)

    def input_thresholds(self) -> tuple[int, ...]:
        """Every input size above which some price of either provider changes, in order."""
        snapshot = data_snapshot.get_snapshot()
        if self._thresholds is None or self._thresholds[0] is not snapshot:
            price_ids = {provider.price_id for provider in PROVIDERS.values()}
            models = [model for provider in snapshot.providers if provider.id in price_ids for model in provider.models]
            prices: list[Any] = [correction.prices for correction in self.corrections]
            for model in models:
                prices.append(model.prices)
                prices.extend(variant.prices for variant in model.price_variants or ())
            self._thresholds = (snapshot, tuple(sorted(_tier_starts(prices))))
        return self._thresholds[1]

    def _prices_of(self, provider: Provider, model: str, context: dict[str, str]) -> ModelPrice | None:
        """The prices in force of one more model of the same answer (an advisor's, say)."""
        return self._prices_in_force(provider, model, self._find_model(provider.price_id, model), context)

    def _prices_in_force(
        self, provider: Provider, model: str, model_info: ModelInfo | None, context: dict[str, str]
    ) -> ModelPrice | None:
        provider_id = provider.price_id
        second = int(time.time())
        if second != self._resolved_second or len(self._resolved) >= self._max_models:
            self._resolved.clear()
            self._resolved_second = second
        key = (provider_id, model, tuple(sorted(context.items())))
        known = self._resolved.get(key, _NOT_RESOLVED)
        if known is not _NOT_RESOLVED:
            return known
        at = on_price_calendar(datetime.fromtimestamp(second, tz=UTC), provider.price_calendar)
        known_id = model_info.id if model_info is not None else None
        names = correction_names(known_id, model)
        label = unpriced_label(provider.list_price_tiers, model_info, self.corrections, provider_id, names, context, at)
        if label is not None:
            prices = None  # billed from capacity bought ahead, or a tier or speed this model has no price for
            self._warn_unpriced_label(provider_id, label, context[label])
            if model_info is None and not any(c.provider == provider_id and c.model in names for c in self.corrections):
                self._warn_unpriced_once(provider_id, model)  # unknown at any tier or speed: say so too
        else:
            prices = model_info.get_prices(at, context or None) if model_info is not None else None
            if self.corrections:
                prices = apply_corrections(prices, self.corrections, provider_id, (known_id, model), context)
            if prices is None:  # neither genai-prices nor a correction knows the model
                self._warn_unpriced_once(provider_id, model)
        self._resolved[key] = prices
        return prices

    def _lookup(self, provider_id: str, model: str) -> ModelInfo | None:
        snapshot = self._snapshot
        provider = data_snapshot.find_provider_by_id(snapshot.providers, provider_id)
        found = provider.find_model(model, all_providers=snapshot.providers) if provider else None
        return None if found is not None and another_version(found.match, model) else found

    def _warn_unpriced_label(self, provider_id: str, label: str, value: str) -> None:
        """Once per provider, label and value (a bounded number of them: providers' answers choose them)."""
        if (provider_id, label, value) in self._labels_warned or len(self._labels_warned) >= MAX_UNPRICED_WARNINGS:
            return
        self._labels_warned.add((provider_id, label, value))
        shown = safe_text(_shown(value), 64)
        why = _UNPRICED_LABEL_REASONS.get(label, f"a {label} the model has no price list for")
        logger.warning(
            "No price known for answers of provider %r served at %s %r (%s): they are recorded with priced=false "
            "and no cost, and budgets do not count them. A price correction with when = { %s = %r } "
            "(UPSTREAM__PRICE_CORRECTIONS_FILE) prices them.",
            provider_id,
            label.replace("_", " "),
            shown,
            why,
            label,
            shown,
        )

    def _warn_unpriced(self, provider_id: str, model: str) -> None:
        # Clients choose model names: one that invents thousands must not flood the log.
        self._unpriced_warnings += 1
        level = logging.WARNING if self._unpriced_warnings <= MAX_UNPRICED_WARNINGS else logging.DEBUG
        logger.log(
            level,
            "No price known for model %r of provider %r: its requests are recorded with "
            "priced=false and no cost. A newer genai-prices may know it.%s",
            _shown(model),
            provider_id,
            " Further unknown models are logged at DEBUG." if self._unpriced_warnings == MAX_UNPRICED_WARNINGS else "",
        )


_UNPRICED_LABEL_REASONS = {
    "service_tier": "billed from capacity bought ahead, or a tier the model has no price list for",
    "speed": "a speed the model has no price list for",
    "inference_geo": "a region whose premium no price list gives",
}


_LOG_SECRETS: ContextVar[Secrets | None] = ContextVar("ccproxy_price_log_secrets", default=None)
"""The keys of the request being priced, while it is (see :meth:`PriceBook.compute`)."""


def _shown(model: str) -> str:
    """A model name or tier as logged: the request's keys and anything shaped like a key masked."""
    secrets = _LOG_SECRETS.get()
    return redact_secrets(without_any_key(tuple(secrets()) if secrets is not None else (), model))


_DEFAULT_PRICE_BOOK = PriceBook()


def compute_cost(service_type: str, model: str | None, usage: Usage) -> Cost:
    """The cost of ``usage`` on ``model``, using a process-wide ``PriceBook``.

    ``service_type`` is ``"anthropic"`` or ``"openai"``.
    Prefer a ``PriceBook`` held by the app; this function is a shortcut to a shared one.
    """
    return _DEFAULT_PRICE_BOOK.compute(service_type, model, usage)


def _tier_starts(prices: list[Any]) -> set[int]:
    """The tier starts of every tiered price in ``prices`` (model prices, conditional prices, corrections)."""
    starts: set[int] = set()
    for price in prices:
        if isinstance(price, list):
            starts |= _tier_starts([getattr(conditional, "prices", conditional) for conditional in price])
            continue
        values = price.values() if isinstance(price, Mapping) else vars(price).values()
        starts.update(tier.start for value in values if isinstance(value, TieredPrices) for tier in value.tiers)
    return starts


def _regional_uplift(provider: Provider, answer_model: str, step_model: str | None) -> Decimal | None:
    """A step's regional uplift: its own model's, or the answer's for a step that names none."""
    return provider.regional_uplift(step_model or answer_model)
