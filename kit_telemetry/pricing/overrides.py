"""Price overrides: the user's own prices, from a mapping or a TOML file.

Overrides win over the bundled prices (see :class:`~kit_telemetry.pricing.PriceTable`).
:func:`load_prices` describes the TOML format.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from kit_telemetry.errors import ConfigError

from .price import PRICE_FIELDS, REQUIRED_FIELDS, ModelPrice, PriceRow, check_rate
from .providers import KNOWN_PROVIDER_NAMES, provider_key

__all__ = ["load_prices", "read_price_file", "rows_from_mapping"]

_TOML_MODEL_KEYS = ("provider", "model", *PRICE_FIELDS)


def read_price_file(path: str | os.PathLike[str]) -> list[PriceRow]:
    """The override rows of a TOML prices file (see :func:`load_prices`), in file order.

    Raises:
        ConfigError: the file cannot be read or parsed, or an entry is wrong.
    """
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
        for key in REQUIRED_FIELDS:
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
            key: check_rate(f"{context}: {key}", entry[key]) for key in PRICE_FIELDS if key in entry
        }
        row = PriceRow(
            provider=provider_key(provider),
            model=model.strip(),
            price=ModelPrice(
                input_per_mtok=rates["input_per_mtok"],
                output_per_mtok=rates["output_per_mtok"],
                cache_read_per_mtok=rates.get("cache_read_per_mtok"),
                cache_write_per_mtok=rates.get("cache_write_per_mtok"),
            ),
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
        for row in read_price_file(path)
    }


def rows_from_mapping(overrides: Mapping[str, ModelPrice]) -> list[PriceRow]:
    """The override rows of ``{"model": price}`` / ``{"provider:model": price}``.

    The provider part is split off only when it is a known provider name, since model ids
    may contain colons.

    Raises:
        ConfigError: a key is empty or not a string, or a value is not a ModelPrice.
    """
    rows: list[PriceRow] = []
    for key, price in overrides.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(
                f"prices: key {key!r} is not allowed; expected 'model' or 'provider:model'"
            )
        if not isinstance(price, ModelPrice):
            raise ConfigError(f"prices: {key!r} = {price!r} is not allowed; expected a ModelPrice")
        prefix, colon, rest = key.partition(":")
        if colon and rest.strip() and prefix.strip().lower() in KNOWN_PROVIDER_NAMES:
            provider, model = provider_key(prefix), rest.strip()
        else:
            provider, model = "", key.strip()
        rows.append(PriceRow(provider=provider, model=model, price=price, source="override"))
    return rows
