"""Pricing: model prices and the cost arithmetic of one LLM call.

Modules, one noun each: ``price`` (:class:`ModelPrice`, its long-context
:class:`PriceTier`, :class:`PriceRow` and the cost of a call), ``table`` (:class:`PriceTable`: overrides first, then bundled data), ``providers``
(provider names and aliases), ``overrides`` (the user's prices and the TOML loader,
:func:`load_prices`), and for the bundled data: ``extract`` (genai-prices' data into a small
JSON document, run in a child process), ``catalogue`` (that document and genai-prices'
lookup rules) and ``bundled`` (the process's copy, read from a disk cache).
"""

from __future__ import annotations

from .overrides import load_prices
from .price import ModelPrice, PriceRow, PriceTier
from .table import PriceTable, known_models

__all__ = ["ModelPrice", "PriceRow", "PriceTable", "PriceTier", "known_models", "load_prices"]
