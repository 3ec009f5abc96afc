"""The price catalogue: genai-prices' bundled data in a small form, and its lookup rules.

A :class:`PriceCatalogue` holds the document that :mod:`kit_telemetry.pricing.extract`
writes (plain lists and strings, about 3 MiB in memory against 30 MiB for genai-prices and
pydantic) and finds a model in it the way genai-prices' ``DataSnapshot.find_provider_model``
does, so that a name prices the same with either:

- a provider id is matched against each provider's id, then against its
  ``provider_match`` rule; an unknown id matches the model against every provider's
  ``model_match`` rule, the first match winning;
- a model is matched, lower-cased, against the provider's models in order, then against
  the models of its ``fallback_model_providers`` (one step, e.g. Vertex AI serving Claude);
  a name with a compact date (``gpt-5.2-20251211``) is tried again with a dashed one.

The document's layout::

    {"format": 2, "genai_prices": "0.2.3", "providers": [
        {"id": "anthropic", "provider_match": RULE, "model_match": RULE, "fallback": [],
         "models": [["claude-sonnet-4-5", RULE, [[null, [3.0, 15.0, 0.3, 3.75]]]], ...]}]}

where RULE is ``["equals" | "starts_with" | "ends_with" | "contains", "lower-cased text"]``,
``["regex", "pattern"]``, ``["or" | "and", [RULE, ...]]`` or null, and each model has its
rates per start date (``[input, output, cache_read, cache_write]`` per million tokens,
null for a model not priced by tokens), followed for a model with long-context tiers by
``[[above_input_tokens, [input, output, cache_read, cache_write]], ...]``.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from typing import Any

from .price import ModelPrice, PriceRow, PriceTier

__all__ = ["PriceCatalogue"]

_Rule = list[Any]
_Model = list[Any]  # [id, rule, [[start_date_or_None, rates_or_None], ...]]
_Provider = dict[str, Any]

_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")


def _matches(rule: _Rule, text: str) -> bool:
    kind, argument = rule
    if kind == "equals":
        return bool(text == argument)
    if kind == "starts_with":
        return text.startswith(argument)
    if kind == "ends_with":
        return text.endswith(argument)
    if kind == "contains":
        return argument in text
    if kind == "regex":
        if isinstance(argument, str):
            # Compiled on first use (or by compile_rules()) and kept in the rule: a
            # re-assignment of an equal pattern, harmless if two threads race to it.
            argument = rule[1] = re.compile(argument)
        return argument.search(text) is not None
    if kind == "or":
        return any(_matches(part, text) for part in argument)
    if kind == "and":
        return all(_matches(part, text) for part in argument)
    raise ValueError(f"unknown match rule {kind!r}")


def _dashed_date(match: re.Match[str]) -> str:
    year, month, day = (int(match.group(index)) for index in range(2, 5))
    try:
        date(year, month, day)
    except ValueError:
        return match.group(0)
    return f"{match.group(1)}{year:04d}-{month:02d}-{day:02d}"


class PriceCatalogue:
    """genai-prices' bundled models and standard rates, looked up by genai-prices' rules.

    Immutable once built, so it is shared by every table of the process without a lock.

    Args:
        document: the document :func:`kit_telemetry.pricing.extract.catalogue_document`
            makes (see the module docstring).

    Raises:
        ValueError: the document is not in the expected layout.
    """

    __slots__ = ("_by_id", "_providers", "version")

    def __init__(self, document: dict[str, Any]) -> None:
        providers = document.get("providers")
        if not isinstance(providers, list) or not all(
            isinstance(provider, dict) and isinstance(provider.get("models"), list)
            for provider in providers
        ):
            raise ValueError("price catalogue: 'providers' is not a list of providers")
        self._providers: list[_Provider] = providers
        self._by_id: dict[str, _Provider] = {provider["id"]: provider for provider in providers}
        self.version: str = str(document.get("genai_prices", ""))
        """The genai-prices version the data comes from."""

    @classmethod
    def empty(cls) -> PriceCatalogue:
        """A catalogue without models: every lookup misses."""
        return cls({"providers": []})

    def find(self, provider_id: str, model: str, *, today: date | None = None) -> PriceRow | None:
        """The price of ``model`` served by ``provider_id``, or None when unknown.

        Args:
            provider_id: a genai-prices provider id or empty; an id genai-prices does not
                know matches the model by name alone.
            model: the model name, any case.
            today: the day whose rates apply (UTC today by default).

        Returns:
            The row, with the provider and model as genai-prices spells them; None when
            no model matches or the model is not priced by tokens.
        """
        ref = model.lower()
        provider = self._provider(provider_id) if provider_id else None
        if provider is None:
            provider = next(
                (
                    candidate
                    for candidate in self._providers
                    if candidate["model_match"] is not None
                    and _matches(candidate["model_match"], ref)
                ),
                None,
            )
            if provider is None:
                return None
        found = self._match_model(provider, ref, fallback=True)
        if found is None:
            dashed = _COMPACT_DATE.sub(_dashed_date, ref)
            if dashed != ref:
                found = self._match_model(provider, dashed, fallback=True)
        if found is None:
            return None
        return _row(provider["id"], found, today)

    def rows(self, *, today: date | None = None) -> list[PriceRow]:
        """Every model priced by tokens, sorted by provider and model."""
        rows = [
            row
            for provider in self._providers
            for model in provider["models"]
            if (row := _row(provider["id"], model, today)) is not None
        ]
        rows.sort(key=lambda row: (row.provider, row.model))
        return rows

    def compile_rules(self) -> None:
        """Compile every regex rule now (about 10 ms), so that no first lookup does it."""
        stack: list[_Rule] = []
        for provider in self._providers:
            stack.extend(rule for rule in (provider["model_match"], provider["provider_match"]))
            stack.extend(model[1] for model in provider["models"])
        while stack:
            rule = stack.pop()
            if rule is None:
                continue
            kind, argument = rule
            if kind in ("or", "and"):
                stack.extend(argument)
            elif kind == "regex" and isinstance(argument, str):
                rule[1] = re.compile(argument)

    def _provider(self, provider_id: str) -> _Provider | None:
        name = provider_id.strip().lower()
        provider = self._by_id.get(name)
        if provider is not None:
            return provider
        return next(
            (
                candidate
                for candidate in self._providers
                if candidate["provider_match"] is not None
                and _matches(candidate["provider_match"], name)
            ),
            None,
        )

    def _match_model(self, provider: _Provider, ref: str, *, fallback: bool) -> _Model | None:
        for model in provider["models"]:
            if _matches(model[1], ref):
                return model  # type: ignore[no-any-return]
        if fallback:
            for provider_id in provider["fallback"]:
                other = self._by_id.get(provider_id)
                if other is not None and (found := self._match_model(other, ref, fallback=False)):
                    return found
        return None


def _row(provider_id: str, model: _Model, today: date | None) -> PriceRow | None:
    day = (today or datetime.now(timezone.utc).date()).isoformat()
    rates = None
    for start, epoch_rates in model[2]:
        if start is None or start <= day:  # ISO dates sort as text
            rates = epoch_rates
    if rates is None:
        return None
    input_rate, output_rate, cache_read, cache_write = rates[:4]
    tiers = tuple(
        PriceTier(
            above_input_tokens=above,
            input_per_mtok=tier[0],
            output_per_mtok=tier[1],
            cache_read_per_mtok=tier[2],
            cache_write_per_mtok=tier[3],
        )
        for above, tier in (rates[4] if len(rates) > 4 else ())
    )
    price = ModelPrice(
        input_per_mtok=input_rate,
        output_per_mtok=output_rate,
        cache_read_per_mtok=cache_read,
        cache_write_per_mtok=cache_write,
        tiers=tiers,
    )
    return PriceRow(provider=provider_id, model=model[0], price=price, source="bundled")
