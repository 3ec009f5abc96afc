"""The price table: prices per (provider, model), from overrides first, then bundled data.

A :class:`PriceTable` answers "what does this model cost?" from two sources, in order:

1. user overrides: a mapping ``{"model": ModelPrice}`` / ``{"provider:model": ModelPrice}``
   or a TOML file (see :mod:`kit_telemetry.pricing.overrides`);
2. the bundled, offline price data of the ``genai-prices`` package, read from a small
   cache of it (see :mod:`kit_telemetry.pricing.bundled`): :meth:`PriceTable.preload`
   loads it ahead of the first lookup.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping

from kit_telemetry.errors import ConfigError, UnknownModelError
from kit_telemetry.tokens import TokenUsage

from .bundled import BUNDLED, BundledPrices
from .overrides import read_price_file, rows_from_mapping
from .price import ModelPrice, PriceRow
from .providers import provider_key

__all__ = ["PriceTable", "known_models"]

logger = logging.getLogger("kit_telemetry")

# Bounds memory when callers pass unbounded model strings; lookups past it still work, uncached.
_CACHE_LIMIT = 4096


def _pattern_filter(pattern: str | None) -> Callable[[PriceRow], bool]:
    if pattern is None or not pattern.strip():
        return lambda row: True
    glob = pattern.strip().lower()
    if not any(ch in glob for ch in "*?["):
        glob = f"*{glob}*"

    def matches(row: PriceRow) -> bool:
        model = row.model.lower()
        return fnmatch.fnmatchcase(model, glob) or fnmatch.fnmatchcase(
            f"{row.provider}:{model}", glob
        )

    return matches


class PriceTable:
    """Prices per (provider, model): user overrides first, then genai-prices' bundled data.

    Lookups are cached per (provider, model) as given, so a repeated lookup is one dict
    access and a first one a scan of the bundled data in memory (tens of microseconds).
    The bundled data is read once per process (see :meth:`preload`): a lookup that comes
    before it is in memory waits for it. Thread-safe.

    Args:
        overrides: ``{"model": ModelPrice}``, ``{"provider:model": ModelPrice}`` (the
            provider part is split off only when it is a known provider name, since model
            ids may contain colons), or the path of a TOML file in the format of
            :func:`load_prices`. A provider-specific override beats a model-wide one.
        subscription_providers: providers billed by subscription (e.g. an Anthropic OAuth
            login): their calls cost 0.0 while their tokens are still counted elsewhere.
        bundled: use genai-prices' data for models without an override.
        bundled_prices: where the bundled data comes from; the process-wide one by default.

    Raises:
        ConfigError: an override or a provider name is wrong.
    """

    __slots__ = (
        "_bundled",
        "_bundled_prices",
        "_bundled_rows",
        "_cache",
        "_lock",
        "_override_rows",
        "_overrides",
        "_subscription",
        "_subscription_memo",
        "_warned",
    )

    def __init__(
        self,
        overrides: Mapping[str, ModelPrice] | str | os.PathLike[str] | None = None,
        *,
        subscription_providers: Iterable[str] = (),
        bundled: bool = True,
        bundled_prices: BundledPrices | None = None,
    ) -> None:
        if overrides is None:
            rows: list[PriceRow] = []
        elif isinstance(overrides, (str, os.PathLike)):
            rows = read_price_file(overrides)
        elif isinstance(overrides, Mapping):
            rows = rows_from_mapping(overrides)
        else:
            raise ConfigError(
                f"prices: {overrides!r} is not allowed; "
                "expected a mapping of ModelPrice or a TOML file path"
            )
        if isinstance(subscription_providers, str):
            # A bare string would be read as a set of one-letter providers.
            raise ConfigError(
                f"subscription_providers: {subscription_providers!r} is not allowed; "
                "expected a list of provider names"
            )
        names = list(subscription_providers)
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(
                    f"subscription_providers: {name!r} is not allowed; expected a provider name"
                )
        self._override_rows = tuple(rows)
        self._overrides = {(row.provider, row.model.lower()): row for row in rows}
        self._subscription = frozenset(provider_key(name) for name in names)
        self._subscription_memo: dict[str | None, bool] = {}
        self._bundled = bundled
        self._bundled_prices = BUNDLED if bundled_prices is None else bundled_prices
        self._bundled_rows: tuple[PriceRow, ...] | None = None
        self._cache: dict[tuple[str | None, str], PriceRow | None] = {}
        self._warned: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()

    def preload(self) -> None:
        """Have the bundled data ready before the first lookup; call it at start-up.

        Reads the cached data at once when it is there (about 10 ms, once per process),
        else starts extracting it from genai-prices on a background thread (about half a
        second, once per machine and genai-prices version); lookups made before that ends
        wait for it. After a return with the cache there, no lookup waits. A no-op for a
        table without bundled data. Never raises.
        """
        if self._bundled:
            self._bundled_prices.preload()

    def find_row(self, provider: str | None, model: str) -> PriceRow | None:
        """The table entry a lookup of (provider, model) lands on, or None when unknown."""
        try:
            return self._cache[provider, model]
        except KeyError:
            return self._resolve(provider, model)

    def find_price(self, provider: str | None, model: str) -> ModelPrice | None:
        """The price of ``model`` served by ``provider``, or None when the model is unknown."""
        try:
            row = self._cache[provider, model]
        except KeyError:
            row = self._resolve(provider, model)
        return None if row is None else row.price

    def price_for(self, provider: str | None, model: str) -> ModelPrice:
        """The price of ``model`` served by ``provider``.

        Raises:
            LookupError: the table has no price for the model.
        """
        price = self.find_price(provider, model)
        if price is None:
            raise UnknownModelError(
                f"no price for model {model!r} (provider {provider!r}); give one with "
                "prices={...: ModelPrice(...)} or a prices TOML file"
            )
        return price

    def cost_usd(
        self,
        provider: str | None,
        model: str,
        usage: TokenUsage,
        *,
        subscription: bool = False,
    ) -> float | None:
        """The cost of one call's ``usage`` in USD (see :class:`ModelPrice`).

        Returns:
            0.0 for subscription-billed calls (``subscription`` or a subscription provider),
            None when the model has no price (logged once per provider and model), else
            the cost.

        Raises:
            UsageError: a token count is negative.
        """
        if subscription:
            return 0.0
        if self._subscription:
            billed_by_subscription = self._subscription_memo.get(provider)
            if billed_by_subscription is None:
                billed_by_subscription = self._is_subscription(provider)
            if billed_by_subscription:
                return 0.0
        price = self.find_price(provider, model)
        if price is None:
            self._warn_unpriced(provider, model)
            return None
        return price.cost_usd(usage)

    def known_models(self, pattern: str | None = None) -> list[PriceRow]:
        """Every priced model: overrides as given, then bundled rows by provider and model.

        Args:
            pattern: keep rows whose model (or "provider:model") contains this text, case
                -insensitively; ``*``, ``?`` and ``[...]`` make it a glob over the whole name.
        """
        rows = list(self._override_rows)
        if self._bundled:
            rows.extend(self._all_bundled_rows())
        keep = _pattern_filter(pattern)
        return [row for row in rows if keep(row)]

    def _resolve(self, provider: str | None, model: str) -> PriceRow | None:
        provider_id = provider_key(provider)
        model_key = model.strip().lower()
        row = self._overrides.get((provider_id, model_key)) or self._overrides.get(("", model_key))
        catalogue = None
        if row is None and self._bundled and model_key:
            # Outside the lock: cached lookups and warnings need not wait for a load.
            catalogue = self._bundled_prices.catalogue()
        with self._lock:
            # First lookups are rare: serialising them resolves each name once per table.
            if (provider, model) in self._cache:
                return self._cache[provider, model]
            if catalogue is not None:
                try:
                    row = catalogue.find(provider_id, model.strip())
                except Exception:
                    # Broken bundled data must not break the agent: the model becomes unpriced.
                    logger.warning(
                        "bundled price lookup failed for provider %r, model %r",
                        provider,
                        model,
                        exc_info=True,
                    )
                    row = None
            if len(self._cache) < _CACHE_LIMIT:
                self._cache[provider, model] = row
        return row

    def _is_subscription(self, provider: str | None) -> bool:
        found = provider_key(provider) in self._subscription
        with self._lock:
            if len(self._subscription_memo) < _CACHE_LIMIT:
                self._subscription_memo[provider] = found
        return found

    def _warn_unpriced(self, provider: str | None, model: str) -> None:
        key = (provider, model)
        if key in self._warned:
            return
        with self._lock:
            if key in self._warned or len(self._warned) >= _CACHE_LIMIT:
                return
            self._warned.add(key)
            full = len(self._warned) == _CACHE_LIMIT
        logger.warning(
            "no price for model %r (provider %r): its cost is unknown (cost_usd=None); "
            "add one with prices={%r: ModelPrice(...)}",
            model,
            provider,
            model,
        )
        if full:
            logger.warning("more than %d unpriced models: no further warnings", _CACHE_LIMIT)

    def _all_bundled_rows(self) -> tuple[PriceRow, ...]:
        catalogue = self._bundled_prices.catalogue()
        with self._lock:
            if self._bundled_rows is None:
                self._bundled_rows = tuple(catalogue.rows())
            return self._bundled_rows


def known_models(pattern: str | None = None) -> list[PriceRow]:
    """Every model of the bundled price data (see :meth:`PriceTable.known_models`)."""
    return PriceTable().known_models(pattern)
