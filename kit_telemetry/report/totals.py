"""A run's totals recomputed from its spans, and the ``kit.*`` totals spans recorded.

``compute_totals`` sums the LLM, tool and turn spans of a run as the aggregator
them; ``recorded_totals`` reads what kit-telemetry wrote on a run or session span, and
``cross_check`` turns each disagreement between the two into a warning message.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .. import semconv
from ..aggregation.ports import Pricer
from ..tokens import TOKEN_KINDS, TokenUsage
from .model import ModelCost, SpanCategory, Totals, figure, sorted_models
from .spans import (
    SpanLike,
    attr_count,
    attr_number,
    attr_strings,
    attr_text,
    is_error,
    is_kit_call,
    model_of,
    provider_of,
    tokens_of,
    tool_name_of,
)

_COST_TOLERANCE_USD = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class ComputedTotals:
    """What ``compute_totals`` found below a run."""

    totals: Totals
    models: tuple[ModelCost, ...]
    costs: tuple[tuple[int, float, str], ...]  # (end_ns, cost_usd, model) of priced calls
    last_finish_reason: str | None


def compute_totals(
    spans: Sequence[tuple[SpanLike, SpanCategory]],
    duration_ms: float,
    *,
    pricer: Pricer | None = None,
) -> ComputedTotals:
    """Sum a run's LLM, tool and turn spans into totals, cost per model and priced calls.

    ``pricer`` prices the calls of other instrumentations (no ``kit.usage.cost_usd``); a
    call made through kit-telemetry's API without a cost stays unpriced, as it was then.
    """
    llm = sorted((s for s, c in spans if c == "llm"), key=lambda s: (s.start_ns, s.span_id))
    tools = sorted((s for s, c in spans if c == "tool"), key=lambda s: (s.start_ns, s.span_id))
    turn_spans = sum(1 for _, c in spans if c == "turn")

    models: dict[tuple[str, str], ModelCost] = {}
    costs: list[tuple[int, float, str]] = []
    counts: dict[str, int] = defaultdict(int)
    cost_usd = 0.0
    last_finish: str | None = None
    for span in llm:
        attrs = span.attributes
        provider, model = provider_of(span), model_of(span)
        outcome = attr_text(attrs, semconv.KIT_LLM_OUTCOME) or ("error" if is_error(span) else "ok")
        if outcome == "budget_denied":
            # Refused before reaching the model: no call, no tokens, no cost.
            counts["denied"] += 1
            row = ModelCost(provider=provider, model=model, budget_denied_count=1)
        else:
            cost = attr_number(attrs, semconv.KIT_USAGE_COST_USD)
            tokens = tokens_of(span)
            if cost is None and pricer is not None and not is_kit_call(span):
                cost = pricer.cost_usd(provider if provider != "-" else "", model, tokens)
            row = ModelCost(
                provider=provider,
                model=model,
                llm_call_count=1,
                tokens=tokens,
                cost_usd=cost or 0.0,
                unpriced_call_count=0 if cost is not None else 1,
            )
            if cost is not None:
                cost_usd += cost
                costs.append((span.end_ns, cost, model))
            if outcome != "ok":
                counts["failed"] += 1
            reasons = attr_strings(attrs, semconv.GEN_AI_RESPONSE_FINISH_REASONS)
            last_finish = reasons[0] if reasons else last_finish
        key = (provider, model)
        models[key] = models[key] + row if key in models else row

    merged = sum(models.values(), ModelCost(provider="", model=""))
    totals = Totals(
        turn_count=turn_spans if turn_spans else merged.llm_call_count,
        llm_call_count=merged.llm_call_count,
        budget_denied_count=counts["denied"],
        failed_llm_call_count=counts["failed"],
        tool_call_count=len(tools),
        failed_tool_call_count=sum(1 for t in tools if _tool_failed(t)),
        tool_names=tuple(tool_name_of(t) for t in tools),
        tokens=merged.tokens,
        # Summed in call order above so the total matches a left-to-right reading.
        cost_usd=cost_usd,
        unpriced_call_count=merged.unpriced_call_count,
        duration_ms=duration_ms,
    )
    return ComputedTotals(
        totals=totals,
        models=sorted_models(models.values()),
        costs=tuple(costs),
        last_finish_reason=last_finish,
    )


def _tool_failed(span: SpanLike) -> bool:
    return is_error(span) or span.attributes.get(semconv.KIT_TOOL_IS_ERROR) is True


def recorded_totals(attrs: Mapping[str, object], prefix: str) -> dict[str, object]:
    """The ``kit.<scope>.*`` totals a span carries, by field name (absent ones left out)."""
    recorded: dict[str, object] = {}
    for name in semconv.TOTAL_FIELDS:
        key = semconv.total_attribute(prefix, name)
        if key in attrs:
            recorded[name] = attrs[key]
    return recorded


def totals_from_recorded(recorded: Mapping[str, object], duration_ms: float) -> Totals:
    """Totals from recorded ``kit.*`` values alone (calls not in the file)."""
    return Totals(
        turn_count=attr_count(recorded, "turn_count"),
        llm_call_count=attr_count(recorded, "llm_call_count"),
        tool_call_count=attr_count(recorded, "tool_call_count"),
        tool_names=attr_strings(recorded, "tool_names"),
        tokens=TokenUsage(**{kind: attr_count(recorded, kind) for kind in TOKEN_KINDS}),
        cost_usd=attr_number(recorded, "cost_usd") or 0.0,
        unpriced_call_count=attr_count(recorded, "unpriced_call_count"),
        duration_ms=duration_ms,
    )


def _show(value: object) -> str:
    # Sums of float costs carry binary noise (0.013649999999999999); ten digits is plenty.
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


def cross_check(what: str, recorded: Mapping[str, object], totals: Totals) -> list[str]:
    """Disagreements between recorded ``kit.*`` totals and recomputed ones, as messages."""
    problems: list[str] = []
    for name, value in recorded.items():
        # A run's duration is its own span's length; nothing to recompute it from.
        if name == "duration_ms":
            continue
        ours = figure(totals, name)
        if name == "tool_names":
            theirs: object = attr_strings(recorded, name)
            same = theirs == ours
        elif name == "cost_usd":
            theirs = attr_number(recorded, name)
            same = theirs is not None and abs(theirs - ours) <= _COST_TOLERANCE_USD * max(
                1.0, abs(ours)
            )
        elif name == "cost_complete":
            theirs = value
            same = value is ours
        else:
            theirs = attr_number(recorded, name)
            same = theirs is not None and theirs == ours
        if not same:
            problems.append(
                f"{what}: {name} is {_show(value)} on the span but {_show(ours)} from its "
                "child spans"
            )
    return problems
