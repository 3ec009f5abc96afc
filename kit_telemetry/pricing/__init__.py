"""Pricing: model prices and the cost arithmetic of one LLM call.

Modules, one noun each: ``price`` (:class:`ModelPrice`, :class:`PriceRow` and the cost of a
call), ``table`` (:class:`PriceTable`: overrides first, then bundled data), ``bundled``
(genai-prices' data and provider names, imported lazily) and ``overrides`` (the user's
prices and the TOML loader, :func:`load_prices`).
"""

from __future__ import annotations

from .overrides import load_prices
from .price import ModelPrice, PriceRow
from .table import PriceTable, known_models

__all__ = ["ModelPrice", "PriceRow", "PriceTable", "known_models", "load_prices"]
