"""The bundled prices: genai-prices' offline data, read as one standard rate per model.

The ``genai-prices`` package is imported on the first lookup that needs it, never at import
time: it pulls in pydantic and a 1.5 MB table. Bundled prices that vary are reduced to one
standard rate: the base tier of context-length tiers, the standard (not batch, flex or
priority) service tier, the rate in effect for most of the day where it depends on the time
of day (DeepSeek), the latest price whose start date has passed when the model is first
resolved, and the default 5-minute cache write of Anthropic models (not the 1-hour one).

Provider names may be OpenTelemetry GenAI names (``gcp.vertex_ai``, ``aws.bedrock``,
``mistral_ai``, ``x_ai``, ``azure.ai.openai`` ...) or ``genai-prices`` ids; an empty or
unknown provider falls back to matching by model name alone.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .price import ModelPrice, PriceRow

if TYPE_CHECKING:
    from genai_prices.data_snapshot import DataSnapshot
    from genai_prices.types import ModelInfo
    from genai_prices.types import ModelPrice as BundledPrice

__all__ = ["KNOWN_PROVIDER_NAMES", "all_bundled_rows", "bundled_row", "provider_key"]

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
KNOWN_PROVIDER_NAMES = frozenset(_PROVIDER_ALIASES) | frozenset(_PROVIDER_ALIASES.values())
"""Every provider name or alias known here.

A "provider:model" override key is split only on these, because model ids may hold a colon
themselves (Bedrock's "anthropic.claude-3-5-sonnet-20240620-v1:0", Ollama's "llama3:8b").
"""


def provider_key(provider: str | None) -> str:
    """The genai-prices id of ``provider``, or its lower-cased name when it has no alias."""
    name = (provider or "").strip().lower()
    return _PROVIDER_ALIASES.get(name, name)


def bundled_row(provider_id: str, model: str) -> PriceRow | None:
    """The bundled price of ``model`` served by ``provider_id``, or None when unknown.

    Args:
        provider_id: a genai-prices provider id (see :func:`provider_key`), or empty to
            match by model name alone; an unknown id is treated as empty.
        model: the model name.

    Returns:
        The row, with the provider and model as genai-prices spells them; None when
        genai-prices does not know the model or does not price it by tokens.
    """
    snapshot = _snapshot()
    provider = None
    if provider_id:
        try:
            provider = snapshot.find_provider(None, provider_id, None)
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


def all_bundled_rows() -> list[PriceRow]:
    """Every model genai-prices prices by tokens, sorted by provider and model."""
    rows = [
        PriceRow(provider=provider.id, model=info.id, price=price, source="bundled")
        for provider in _snapshot().providers
        for info in provider.models
        if (price := _standard_price(info)) is not None
    ]
    rows.sort(key=lambda row: (row.provider, row.model))
    return rows


def _snapshot() -> DataSnapshot:
    from genai_prices import data_snapshot

    # get_snapshot() honours genai-prices' own UpdatePrices when the user runs it.
    return data_snapshot.get_snapshot()


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
