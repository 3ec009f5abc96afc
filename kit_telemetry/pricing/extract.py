"""genai-prices' bundled data, extracted into the small JSON document kit-telemetry reads.

genai-prices ships its data as a Python module of its own objects, whose import pulls in
pydantic and httpx: about 30 MiB and 0.4 s in every process that imports it. This module
reads that data once, through the package's public objects, and writes what pricing needs
(see :mod:`kit_telemetry.pricing.catalogue` for the format): every provider and model with
genai-prices' match rules, and each model's standard token rates. It is run in a child
process (``python extract.py``: stdlib and genai-prices only, so that the child does not
import kit-telemetry either) whose output is cached on disk by
:mod:`kit_telemetry.pricing.bundled`, or imported in-process when no child can be started.

Bundled prices that vary are reduced to one standard rate: the standard (not batch, flex
or priority) service tier, the rate in effect for most of the day where it depends on the
time of day (DeepSeek), and the default 5-minute cache write of Anthropic models (not the
1-hour one). Two kinds are kept whole: context-length tiers (a long prompt is priced at its
tier), and prices that start on a date (one rate per start date; the reader picks the one
in effect on the day of the lookup).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genai_prices.types import MatchLogic, ModelInfo
    from genai_prices.types import ModelPrice as BundledPrice

__all__ = ["FORMAT", "catalogue_document"]

FORMAT = 2
"""The version of the document's layout and of the rate reduction; a change rebuilds caches."""

_EPOCH = datetime(1970, 1, 1, 12, tzinfo=timezone.utc)


def catalogue_document() -> dict[str, Any]:
    """The bundled data of the installed genai-prices, as a JSON-ready document.

    Raises:
        ImportError: genai-prices is not installed.
    """
    import genai_prices
    from genai_prices.data_snapshot import get_snapshot

    providers = []
    # get_snapshot() is the bundled data unless the user installed a snapshot of their own.
    for provider in get_snapshot().providers:
        providers.append(
            {
                "id": provider.id,
                "provider_match": _clause(provider.provider_match),
                "model_match": _clause(provider.model_match),
                "fallback": list(provider.fallback_model_providers or ()),
                "models": [
                    [info.id, _clause(info.match), _price_epochs(info)] for info in provider.models
                ],
            }
        )
    return {"format": FORMAT, "genai_prices": genai_prices.__version__, "providers": providers}


def _clause(logic: MatchLogic | None) -> list[Any] | None:
    """A match rule as ``[kind, argument]``; text arguments lower-cased, as genai-prices compares."""
    from genai_prices import types

    if logic is None:
        return None
    if isinstance(logic, types.ClauseOr):
        return ["or", [_clause(part) for part in logic.or_]]
    if isinstance(logic, types.ClauseAnd):
        return ["and", [_clause(part) for part in logic.and_]]
    if isinstance(logic, types.ClauseRegex):
        return ["regex", logic.regex]  # searched in the lower-cased name, as genai-prices does
    if isinstance(logic, types.ClauseEquals):
        return ["equals", logic.equals.lower()]
    if isinstance(logic, types.ClauseStartsWith):
        return ["starts_with", logic.starts_with.lower()]
    if isinstance(logic, types.ClauseEndsWith):
        return ["ends_with", logic.ends_with.lower()]
    if isinstance(logic, types.ClauseContains):
        return ["contains", logic.contains.lower()]
    raise TypeError(f"unknown genai-prices match rule {logic!r}")


def _price_epochs(info: ModelInfo) -> list[list[Any]]:
    """``[[start_date_or_None, rates_or_None], ...]``: the standard rates from each date on."""
    from genai_prices.types import StartDateConstraint

    starts: set[date] = set()
    if isinstance(info.prices, list):
        for conditional in info.prices:
            if isinstance(conditional.constraint, StartDateConstraint):
                starts.add(conditional.constraint.start_date)
    epochs: list[list[Any]] = [[None, _rates(_standard_rates(info, _EPOCH))]]
    for start in sorted(starts):
        moment = datetime(start.year, start.month, start.day, 12, tzinfo=timezone.utc)
        rates = _rates(_standard_rates(info, moment))
        if rates != epochs[-1][1]:
            epochs.append([start.isoformat(), rates])
    return epochs


def _standard_rates(info: ModelInfo, now: datetime) -> BundledPrice:
    from genai_prices.types import ModelPrice as BundledPrice
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    if isinstance(info.prices, BundledPrice):
        return info.prices
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


def _tiered(prices: object, key: str) -> tuple[float, list[tuple[int, float]]] | None:
    """A rate and its context-length tiers ``[(above_input_tokens, rate), ...]``, or None.

    genai-prices answers None for a price key a model does not use.
    """
    value = getattr(prices, key, None)
    if value is None:
        return None
    tiers = getattr(value, "tiers", None)  # TieredPrices; a plain Decimal has none
    if tiers is None:
        return float(value), []
    return float(value.base), [(int(tier.start), float(tier.price)) for tier in tiers]


def _at(rate: tuple[float, list[tuple[int, float]]] | None, above: int) -> float | None:
    """The rate that applies once the input is above ``above`` tokens (cliff pricing)."""
    if rate is None:
        return None
    base, tiers = rate
    applicable = base
    for start, price in sorted(tiers):
        if start <= above:
            applicable = price
    return applicable


def _rates(prices: BundledPrice) -> list[Any] | None:
    """``[input, output, cache_read, cache_write]`` per million tokens, then the tiers.

    A model with context-length tiers gets a fifth item, ``[[above_input_tokens,
    [input, output, cache_read, cache_write]], ...]``: the rates of every token of a call
    whose input (cached tokens included) is above that many tokens. None if the model is
    not priced by tokens.
    """
    input_rate = _tiered(prices, "input_mtok")
    output_rate = _tiered(prices, "output_mtok")
    if input_rate is None and output_rate is None:
        return None  # priced per character, second or image: not by tokens
    cache_read = _tiered(prices, "cache_read_mtok")
    cache_write = _tiered(prices, "cache_write_mtok")
    if cache_write is None:
        cache_write = _tiered(prices, "cache_write_5m_mtok")
    keys = (input_rate, output_rate, cache_read, cache_write)

    def at(above: int) -> list[float | None]:
        values = [_at(rate, above) for rate in keys]
        return [values[0] or 0.0, values[1] or 0.0, values[2], values[3]]

    rates: list[Any] = at(-1)
    starts = sorted({start for rate in keys if rate is not None for start, _ in rate[1]})
    if starts:
        rates.append([[start, at(start)] for start in starts])
    return rates


if __name__ == "__main__":
    json.dump(catalogue_document(), sys.stdout, separators=(",", ":"))
