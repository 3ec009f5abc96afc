"""The price of one model, and the cost arithmetic of one LLM call.

Costs follow the token model of ``kit_telemetry.tokens.TokenUsage``: the four token kinds are disjoint
(``input_tokens`` excludes cached tokens, reasoning tokens are part of ``output_tokens``
and are priced as output), cache rates apply where a price has them and the input rate
otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from kit_telemetry.errors import ConfigError, UsageError
from kit_telemetry.tokens import TokenUsage

__all__ = [
    "PRICE_FIELDS",
    "REQUIRED_FIELDS",
    "ModelPrice",
    "PriceRow",
    "PriceTier",
    "check_rate",
]

PRICE_FIELDS = ("input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok")
"""The rates of a :class:`ModelPrice`, in USD per million tokens."""
REQUIRED_FIELDS = ("input_per_mtok", "output_per_mtok")
"""The rates every price has; the cache rates may be left out."""

_TOKENS_PER_RATE_UNIT = 1_000_000


def check_rate(field: str, value: object) -> float:
    """``value`` as a float, if it is a rate: a finite number >= 0.

    Raises:
        ConfigError: ``value`` is negative, infinite, NaN or not a number; the message
            starts with ``field``.
    """
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
class PriceTier:
    """The rates of a long-context tier: every token of a call whose input is above a size.

    Providers price long prompts by a cliff: once a call's input (cached tokens included)
    is above ``above_input_tokens``, all its tokens, output too, cost the tier's rates.

    Attributes:
        above_input_tokens: the tier applies to calls with more input tokens than this.
        input_per_mtok: uncached input tokens.
        output_per_mtok: output tokens.
        cache_read_per_mtok: cache reads; None bills them as the tier's input.
        cache_write_per_mtok: cache writes; None bills them as the tier's input.

    Raises:
        ConfigError: a rate or the threshold is not allowed.
    """

    above_input_tokens: int
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def __post_init__(self) -> None:
        threshold = self.above_input_tokens
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ConfigError(
                f"PriceTier above_input_tokens: {threshold!r} is not allowed; expected an "
                "integer >= 0"
            )
        for field in PRICE_FIELDS:
            value = getattr(self, field)
            if value is None and field not in REQUIRED_FIELDS:
                continue
            object.__setattr__(self, field, check_rate(f"PriceTier {field}", value))


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """The price of one model, in USD per million tokens of each kind.

    Attributes:
        input_per_mtok: uncached input tokens.
        output_per_mtok: output tokens, reasoning tokens included.
        cache_read_per_mtok: input tokens read from the prompt cache; None bills them as input.
        cache_write_per_mtok: input tokens written to the prompt cache; None bills them as input.
        tiers: long-context tiers, replacing all four rates for calls with a long input
            (e.g. Claude Sonnet 4.5 above 200k input tokens); empty for one flat price.

    Raises:
        ConfigError: a rate is negative, infinite, NaN or not a number.
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    tiers: tuple[PriceTier, ...] = ()

    def __post_init__(self) -> None:
        for field in PRICE_FIELDS:
            value = getattr(self, field)
            if value is None and field not in REQUIRED_FIELDS:
                continue
            # Ints become floats so equal prices compare and print alike whatever was typed.
            object.__setattr__(self, field, check_rate(f"ModelPrice {field}", value))
        tiers = tuple(self.tiers)
        for tier in tiers:
            if not isinstance(tier, PriceTier):
                raise ConfigError(f"ModelPrice tiers: {tier!r} is not a PriceTier")
        object.__setattr__(
            self, "tiers", tuple(sorted(tiers, key=lambda tier: tier.above_input_tokens))
        )

    def cost_usd(self, usage: TokenUsage) -> float:
        """The cost of one call's ``usage`` in USD (reasoning is billed as the output it is).

        Raises:
            UsageError: a token count is negative.
        """
        input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
        cache_read_tokens, cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
        if min(input_tokens, output_tokens, cache_read_tokens, cache_write_tokens) < 0:
            given = ", ".join(f"{kind}={count}" for kind, count in usage.as_fields().items())
            raise UsageError(f"token counts must be >= 0, got {given}")
        rates: ModelPrice | PriceTier = self
        if self.tiers:
            total_input = input_tokens + cache_read_tokens + cache_write_tokens
            for tier in self.tiers:
                if total_input > tier.above_input_tokens:
                    rates = tier
        input_rate = rates.input_per_mtok
        cache_read = rates.cache_read_per_mtok
        cache_write = rates.cache_write_per_mtok
        total = (
            input_tokens * input_rate
            + output_tokens * rates.output_per_mtok
            + cache_read_tokens * (input_rate if cache_read is None else cache_read)
            + cache_write_tokens * (input_rate if cache_write is None else cache_write)
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
