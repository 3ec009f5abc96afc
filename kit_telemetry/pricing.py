"""Model prices and the cost arithmetic of one LLM call.

A :class:`PriceTable` answers "what does this model cost?" from two sources, in order:

1. user overrides: a mapping ``{"model": ModelPrice}`` / ``{"provider:model": ModelPrice}``
   or a TOML file (see :func:`load_prices` for the format);
2. the bundled, offline price data of the ``genai-prices`` package, imported on the first
   lookup that needs it (never at import time: it pulls in pydantic and a 1.5 MB table).

Costs follow the token model of ``events.md``: the four token kinds are disjoint
(``input_tokens`` excludes cached tokens, reasoning tokens are part of ``output_tokens``
and are priced as output), cache rates apply where the table has them and the input rate
otherwise. Bundled prices that vary are reduced to one standard rate: the base tier of
context-length tiers, the standard (not batch, flex or priority) service tier, the rate in
effect for most of the day where it depends on the time of day (DeepSeek), the latest price
whose start date has passed when the table first resolves the model, and the default
5-minute cache write of Anthropic models (not the 1-hour one).

Provider names may be OpenTelemetry GenAI names (``gcp.vertex_ai``, ``aws.bedrock``,
``mistral_ai``, ``x_ai``, ``azure.ai.openai`` ...) or ``genai-prices`` ids; an empty or
unknown provider falls back to matching by model name alone.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Literal

from kit_telemetry.errors import ConfigError, UnknownModelError, UsageError

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo
    from genai_prices.types import ModelPrice as BundledPrice

__all__ = ["ModelPrice", "PriceRow", "PriceTable", "known_models", "load_prices"]

logger = logging.getLogger("kit_telemetry")

_TOKENS_PER_RATE_UNIT = 1_000_000
_PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
_REQUIRED_FIELDS = ("input_per_mtok", "output_per_mtok")
_TOML_MODEL_KEYS = ("provider", "model", *_PRICE_FIELDS)
# Bounds memory when callers pass unbounded model strings; lookups past it still work, uncached.
_CACHE_LIMIT = 4096

# OpenTelemetry GenAI provider names (current and legacy gen_ai.system values) and common
# spellings -> genai-prices provider ids. Names not listed are passed to genai-prices as is.
_PROVIDER_ALIASES: dict[str, str] = {
    alias: provider_id
    for provider_id, aliases in {
        "openai": ("openai",),
        "azure": (
            "azure.ai.openai",
            "az.ai.openai",
            "azure.ai.inference",
            "az.ai.inference",
            "azure_openai",
            "azure",
        ),
        "anthropic": ("anthropic",),
        "google": (
            "gcp.gemini",
            "gcp.vertex_ai",
            "gcp.gen_ai",
            "google",
            "gemini",
            "vertex_ai",
            "vertexai",
            "google_genai",
        ),
        "aws": ("aws.bedrock", "bedrock", "aws"),
        "mistral": ("mistral_ai", "mistralai", "mistral"),
        "deepseek": ("deepseek",),
        "x-ai": ("x_ai", "xai", "x-ai"),
        "cohere": ("cohere",),
        "groq": ("groq",),
        "perplexity": ("perplexity",),
        "together": ("together", "together_ai"),
        "fireworks": ("fireworks", "fireworks_ai"),
        "openrouter": ("openrouter",),
        "cerebras": ("cerebras",),
        "moonshotai": ("moonshot", "moonshotai"),
    }.items()
    for alias in aliases
}
# A "provider:model" override key is split only on these, because model ids may hold a
# colon themselves (Bedrock's "anthropic.claude-3-5-sonnet-20240620-v1:0", Ollama's "llama3:8b").
_KNOWN_PROVIDER_NAMES = frozenset(_PROVIDER_ALIASES) | frozenset(_PROVIDER_ALIASES.values())


def _provider_key(provider: str | None) -> str:
    name = (provider or "").strip().lower()
    return _PROVIDER_ALIASES.get(name, name)


def _check_rate(field: str, value: object) -> float:
    # bool is an int subclass, but `true` as a price is always a mistake.
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(
            f"{field}: {value!r} is not allowed; expected a finite number >= 0 "
            "(USD per million tokens)"
        )
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """The price of one model, in USD per million tokens of each kind.

    Attributes:
        input_per_mtok: uncached input tokens.
        output_per_mtok: output tokens, reasoning tokens included.
        cache_read_per_mtok: input tokens read from the prompt cache; None bills them as input.
        cache_write_per_mtok: input tokens written to the prompt cache; None bills them as input.

    Raises:
        ConfigError: a rate is negative, infinite, NaN or not a number.
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def __post_init__(self) -> None:
        for field in _PRICE_FIELDS:
            value = getattr(self, field)
            if value is None and field not in _REQUIRED_FIELDS:
                continue
            # Ints become floats so equal prices compare and print alike whatever was typed.
            object.__setattr__(self, field, _check_rate(f"ModelPrice {field}", value))

    def cost_usd(
        self,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
    ) -> float:
        """The cost of one call in USD.

        Args:
            input_tokens: input tokens neither read from nor written to the cache.
            output_tokens: output tokens, including reasoning tokens.
            cache_read_tokens: input tokens read from the cache.
            cache_write_tokens: input tokens written to the cache.

        Raises:
            UsageError: a token count is negative.
        """
        if input_tokens < 0 or output_tokens < 0 or cache_read_tokens < 0 or cache_write_tokens < 0:
            raise UsageError(
                "token counts must be >= 0, got "
                f"input_tokens={input_tokens}, output_tokens={output_tokens}, "
                f"cache_read_tokens={cache_read_tokens}, cache_write_tokens={cache_write_tokens}"
            )
        cache_read = self.cache_read_per_mtok
        cache_write = self.cache_write_per_mtok
        total = (
            input_tokens * self.input_per_mtok
            + output_tokens * self.output_per_mtok
            + cache_read_tokens * (self.input_per_mtok if cache_read is None else cache_read)
            + cache_write_tokens * (self.input_per_mtok if cache_write is None else cache_write)
        )
        return total / _TOKENS_PER_RATE_UNIT


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceRow:
    """One entry of a price table, as listed by :meth:`PriceTable.known_models`.

    Attributes:
        provider: the genai-prices provider id (or the lower-cased name given in an
            override); empty when the price applies to the model under any provider.
        model: the model name as the source spells it.
        price: the rates.
        source: "override" for user prices, "bundled" for genai-prices data.
    """

    provider: str
    model: str
    price: ModelPrice
    source: Literal["override", "bundled"]


def _read_price_file(path: str | os.PathLike[str]) -> list[PriceRow]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    where = os.fspath(path)
    try:
        with open(where, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"prices file {where!r} cannot be read: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"prices file {where!r} is not valid TOML: {exc}") from exc

    for key in document:
        if key != "models":
            raise ConfigError(f"{where}: unknown top-level key {key!r}; allowed: models")
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f'{where}: expected a [models."NAME"] table per model, got {models!r}')

    rows: list[PriceRow] = []
    seen: dict[tuple[str, str], str] = {}
    for label, entry in models.items():
        context = f"{where}: model {label!r}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{context}: expected a table of rates, got {entry!r}")
        for key in entry:
            if key not in _TOML_MODEL_KEYS:
                raise ConfigError(
                    f"{context}: unknown field {key!r}; allowed: {', '.join(_TOML_MODEL_KEYS)}"
                )
        for key in _REQUIRED_FIELDS:
            if key not in entry:
                raise ConfigError(f"{context}: {key} is missing (USD per million tokens)")
        model = entry.get("model", label)
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"{context}: model = {model!r} is not allowed; expected a model name")
        provider = entry.get("provider", "")
        if not isinstance(provider, str):
            raise ConfigError(
                f"{context}: provider = {provider!r} is not allowed; expected a provider name"
            )
        rates = {
            key: _check_rate(f"{context}: {key}", entry[key])
            for key in _PRICE_FIELDS
            if key in entry
        }
        row = PriceRow(
            provider=_provider_key(provider),
            model=model.strip(),
            price=ModelPrice(**rates),
            source="override",
        )
        index = (row.provider, row.model.lower())
        if index in seen:
            raise ConfigError(
                f"{context}: prices {row.provider + ':' if row.provider else ''}{row.model} "
                f"again, already priced by model {seen[index]!r}"
            )
        seen[index] = label
        rows.append(row)
    return rows


def load_prices(path: str | os.PathLike[str]) -> dict[str, ModelPrice]:
    """Read model prices from a TOML file.

    The file holds one table per model, rates in USD per million tokens::

        [models."my-model"]
        input_per_mtok = 1.0
        output_per_mtok = 4.0
        cache_read_per_mtok = 0.1      # optional: cache reads cost the input rate without it
        cache_write_per_mtok = 1.25    # optional: cache writes cost the input rate without it
        provider = "openai"            # optional: the price applies to this provider only

        [models."gpt-4o on azure"]     # with `model`, the table name is only a label
        model = "gpt-4o"
        provider = "azure.ai.openai"
        input_per_mtok = 2.75
        output_per_mtok = 11.0

    Model names match case-insensitively; provider names may be OpenTelemetry GenAI names.

    Args:
        path: the TOML file.

    Returns:
        ``{"model": price}``, or ``{"provider:model": price}`` for provider-specific prices,
        in file order; :class:`PriceTable` takes the file path itself as ``overrides`` too.

    Raises:
        ConfigError: the file cannot be read or parsed, or an entry is wrong; the message
            names the model, the field, the value and what is allowed.
    """
    return {
        (f"{row.provider}:{row.model}" if row.provider else row.model): row.price
        for row in _read_price_file(path)
    }


def _rows_from_mapping(overrides: Mapping[str, ModelPrice]) -> list[PriceRow]:
    rows: list[PriceRow] = []
    for key, price in overrides.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(
                f"prices: key {key!r} is not allowed; expected 'model' or 'provider:model'"
            )
        if not isinstance(price, ModelPrice):
            raise ConfigError(f"prices: {key!r} = {price!r} is not allowed; expected a ModelPrice")
        prefix, colon, rest = key.partition(":")
        if colon and rest.strip() and prefix.strip().lower() in _KNOWN_PROVIDER_NAMES:
            provider, model = _provider_key(prefix), rest.strip()
        else:
            provider, model = "", key.strip()
        rows.append(PriceRow(provider=provider, model=model, price=price, source="override"))
    return rows


def _rate(prices: object, key: str) -> float | None:
    # genai-prices answers None for a price key a model does not use.
    value = getattr(prices, key, None)
    if value is None:
        return None
    base = getattr(value, "base", value)  # TieredPrices: the rate below the first threshold
    return float(base)


def _standard_rates(info: ModelInfo) -> BundledPrice:
    from genai_prices.types import ModelPrice as BundledPrice
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    if isinstance(info.prices, BundledPrice):
        return info.prices
    now = datetime.now(timezone.utc)
    base = info.prices[0].prices
    windows: list[tuple[BundledPrice, int]] = []  # time-of-day rates, minutes per day each
    for conditional in info.prices:
        constraint = conditional.constraint
        if constraint is None or (
            isinstance(constraint, StartDateConstraint) and constraint.active(now)
        ):
            base = conditional.prices  # later entries win, as in genai-prices
        elif isinstance(constraint, TimeOfDateConstraint):
            start, end = constraint.start_time, constraint.end_time
            minutes = (end.hour * 60 + end.minute - start.hour * 60 - start.minute) % 1440
            for index, (rates, total) in enumerate(windows):
                if rates == conditional.prices:
                    windows[index] = (rates, total + minutes)
                    break
            else:
                windows.append((conditional.prices, minutes))
    # Time-of-day windows are peak hours for some models (DeepSeek V4) and the regular
    # hours of others (deepseek-chat, whose default entry is the off-peak discount): the
    # standard rate is the one in effect for most of the day.
    for rates, minutes in windows:
        if minutes > 720:
            return rates
    return base


def _standard_price(info: ModelInfo) -> ModelPrice | None:
    prices = _standard_rates(info)
    input_rate = _rate(prices, "input_mtok")
    output_rate = _rate(prices, "output_mtok")
    if input_rate is None and output_rate is None:
        return None  # priced per character, second or image: not by tokens
    cache_write = _rate(prices, "cache_write_mtok")
    if cache_write is None:
        cache_write = _rate(prices, "cache_write_5m_mtok")
    return ModelPrice(
        input_per_mtok=input_rate or 0.0,
        output_per_mtok=output_rate or 0.0,
        cache_read_per_mtok=_rate(prices, "cache_read_mtok"),
        cache_write_per_mtok=cache_write,
    )


def _snapshot() -> DataSnapshot:
    from genai_prices import data_snapshot

    # get_snapshot() honours genai-prices' own UpdatePrices when the user runs it.
    return data_snapshot.get_snapshot()


def _bundled_row(provider_key: str, model: str) -> PriceRow | None:
    snapshot = _snapshot()
    provider = None
    if provider_key:
        try:
            provider = snapshot.find_provider(None, provider_key, None)
        except LookupError:
            provider = None  # a provider genai-prices does not know: match by model alone
    try:
        found, info = snapshot.find_provider_model(model, provider, None, None)
    except LookupError:
        return None
    price = _standard_price(info)
    if price is None:
        return None
    return PriceRow(provider=found.id, model=info.id, price=price, source="bundled")


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
    access; the first one that reaches the bundled data imports ``genai-prices``.
    Thread-safe.

    Args:
        overrides: ``{"model": ModelPrice}``, ``{"provider:model": ModelPrice}`` (the
            provider part is split off only when it is a known provider name, since model
            ids may contain colons), or the path of a TOML file in the format of
            :func:`load_prices`. A provider-specific override beats a model-wide one.
        subscription_providers: providers billed by subscription (e.g. an Anthropic OAuth
            login): their calls cost 0.0 while their tokens are still counted elsewhere.
        bundled: use genai-prices' data for models without an override.

    Raises:
        ConfigError: an override or a provider name is wrong.
    """

    __slots__ = (
        "_bundled",
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
    ) -> None:
        if overrides is None:
            rows: list[PriceRow] = []
        elif isinstance(overrides, (str, os.PathLike)):
            rows = _read_price_file(overrides)
        elif isinstance(overrides, Mapping):
            rows = _rows_from_mapping(overrides)
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
        self._subscription = frozenset(_provider_key(name) for name in names)
        self._subscription_memo: dict[str | None, bool] = {}
        self._bundled = bundled
        self._bundled_rows: tuple[PriceRow, ...] | None = None
        self._cache: dict[tuple[str | None, str], PriceRow | None] = {}
        self._warned: set[tuple[str | None, str]] = set()
        self._lock = threading.Lock()

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
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        subscription: bool = False,
    ) -> float | None:
        """The cost of one call in USD (token kinds are disjoint, see :class:`ModelPrice`).

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
        return price.cost_usd(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
        )

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
        provider_key = _provider_key(provider)
        model_key = model.strip().lower()
        row = self._overrides.get((provider_key, model_key)) or self._overrides.get(("", model_key))
        with self._lock:
            # First lookups are rare: serialising them resolves each name once per table, and
            # keeps threads from racing through genai-prices' unlocked caches.
            if (provider, model) in self._cache:
                return self._cache[provider, model]
            if row is None and self._bundled and model_key:
                try:
                    row = _bundled_row(provider_key, model.strip())
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
        found = _provider_key(provider) in self._subscription
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
        with self._lock:
            if self._bundled_rows is None:
                rows = [
                    PriceRow(provider=provider.id, model=info.id, price=price, source="bundled")
                    for provider in _snapshot().providers
                    for info in provider.models
                    if (price := _standard_price(info)) is not None
                ]
                rows.sort(key=lambda row: (row.provider, row.model))
                self._bundled_rows = tuple(rows)
            return self._bundled_rows


def known_models(pattern: str | None = None) -> list[PriceRow]:
    """Every model of the bundled price data (see :meth:`PriceTable.known_models`)."""
    return PriceTable().known_models(pattern)
