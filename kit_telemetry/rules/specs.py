"""Rule specs: each budget's alert rules as data, before they are YAML.

A ``Rule`` holds an alert's PromQL, labels and annotations; the annotations are parts
that become a Go template in the rules file (``template``) and the expected text in the
promtool tests (``promtool_tests``), so the two cannot drift apart. ``Measure`` says what a
budget's rules read: spend per scope key, or the utilization ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from ..budgets.config import Budget
from ..budgets.windows import parse_window
from ..metrics import KIT_BUDGET_DECISIONS as _DECISIONS
from ..metrics import KIT_BUDGET_LIMIT_USD as _LIMIT_USD
from ..metrics import KIT_BUDGET_MAX_UTILIZATION as _MAX_UTILIZATION
from ..metrics import KIT_BUDGET_SPENT_USD as _SPENT_USD
from ..metrics import KIT_BUDGET_WINDOW_END as _WINDOW_END

__all__ = [
    "ALERT_CALLS_DENIED",
    "ALERT_EXHAUSTED",
    "ALERT_FORECAST",
    "ALERT_THRESHOLD",
    "LABELED_SCOPES",
    "RULES_FILENAME",
    "RULES_TEST_FILENAME",
    "Label",
    "Measure",
    "Part",
    "Rule",
    "Value",
    "denied_rule",
    "duration",
    "exhausted_rule",
    "forecast_rule",
    "forecast_shape",
    "number",
    "promql_quote",
    "rules_of",
    "template",
    "threshold_rules",
]

# The files ``rules.write_rules`` writes; the test file loads the rules file by this name.
RULES_FILENAME = "kit-telemetry-budgets.rules.yml"
RULES_TEST_FILENAME = "kit-telemetry-budgets.rules.test.yml"

ALERT_THRESHOLD = "KitBudgetThresholdCrossed"
ALERT_EXHAUSTED = "KitBudgetExhausted"
ALERT_FORECAST = "KitBudgetForecastExhausted"
ALERT_CALLS_DENIED = "KitBudgetCallsDenied"

# Scopes whose keys are few enough to be a label (see kit_budget_spent_usd in the metric catalogue).
LABELED_SCOPES = frozenset({"global", "model", "provider"})
_DENIED_RANGE = "5m"

# Calendar windows: (look-back of the rate, "for" of the forecast alert, length in seconds).
_CALENDAR = {
    "hour": (15 * 60, 5 * 60, 3600),
    "day": (3600, 15 * 60, 86_400),
    "week": (6 * 3600, 30 * 60, 7 * 86_400),
    "month": (86_400, 3600, 30 * 86_400),
}
_UNIT_NOUNS = {
    "tokens": "tokens",
    "llm_calls": "LLM calls",
    "tool_calls": "tool calls",
    "repeats": "identical tool calls",
}


# --- text that is a Go template in the rules and plain text in the tests' expectations ---


@dataclass(frozen=True, slots=True)
class Label:
    """A part of an annotation showing the alert's label ``name``."""

    name: str


@dataclass(frozen=True, slots=True)
class Value:
    """A part of an annotation showing the alert's value, as a percentage."""


Part: TypeAlias = "str | Label | Value"


def template(parts: Sequence[Part]) -> str:
    """``parts`` as the Go template of a rules-file annotation."""
    out = []
    for part in parts:
        if isinstance(part, Label):
            out.append(f"{{{{ $labels.{part.name} }}}}")
        elif isinstance(part, Value):
            out.append("{{ $value | humanizePercentage }}")
        else:
            # A budget name containing "{{" must stay text, not start a template action.
            out.append(part.replace("{{", '{{ "{{" }}'))
    return "".join(out)


# --- the plan: rules and their test cases, built together so they cannot drift apart ----


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One alerting rule: its PromQL, labels and annotation parts."""

    alert: str
    expr: str
    labels: dict[str, str]
    summary: tuple[Part, ...]
    description: tuple[Part, ...]
    for_s: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Measure:
    """What a budget's rules read: spend per scope key, or the utilization ratio.

    ``per_key``: a USD-only budget of a few-keyed scope, whose spend is exported per scope
    key as ``kit_budget_spent_usd``. Otherwise the enforcer exports only
    ``kit_budget_max_utilization_ratio``: the highest spent/limit over every scope key and
    every unit of the budget (USD, tokens, calls) in the current window.
    """

    budget: Budget

    @property
    def per_key(self) -> bool:
        return self.budget.scope in LABELED_SCOPES and self.budget.units == ("usd",)

    def spent_selector(self) -> str:
        metric = _SPENT_USD if self.per_key else _MAX_UTILIZATION
        return f"{metric}{{budget={promql_quote(self.budget.name)}}}"

    def by(self) -> str:
        return "budget, scope_key" if self.per_key else "budget"

    def limit_selector(self) -> str:
        return f"{_LIMIT_USD}{{budget={promql_quote(self.budget.name)}}}"

    def over_limit(self, spent: str) -> str:
        """PromQL for ``spent`` (reduced ``by(...)``) as a fraction of the limit."""
        if not self.per_key:
            return spent
        return (
            f"{spent}\n  / on (budget) group_left ()\nmax by (budget) ({self.limit_selector()} > 0)"
        )

    def ratio(self) -> str:
        return self.over_limit(f"max by ({self.by()}) ({self.spent_selector()})")


def promql_quote(text: str) -> str:
    """A PromQL string literal; anything beyond printable ASCII is escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def number(value: float) -> str:
    """``value`` as a PromQL or promtool number."""
    return repr(float(value))


def duration(seconds: int) -> str:
    """``seconds`` as a Prometheus duration in the largest whole unit (``90m``, ``1d``)."""
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:g}%"


def _money(usd: float) -> str:
    return f"${usd:,.2f}" if round(usd, 2) == usd else f"${usd:g}"


def _limit_text(budget: Budget, unit: str) -> str:
    if unit == "usd":
        assert budget.limit_usd is not None
        return _money(budget.limit_usd)
    limit = {
        "tokens": budget.limit_tokens,
        "llm_calls": budget.max_llm_calls,
        "tool_calls": budget.max_tool_calls,
        "repeats": budget.max_repeats,
    }[unit]
    return f"{limit:,} {_UNIT_NOUNS[unit]}"


def _limits_phrase(measure: Measure) -> str:
    budget = measure.budget
    limits = " or ".join(_limit_text(budget, unit) for unit in budget.units)
    per_run = " per run" if budget.scope == "run" else ""
    window = budget.window
    if window == "none":
        return limits + per_run
    if window.startswith("rolling:"):
        return f"{limits}{per_run} per rolling {window.removeprefix('rolling:')}"
    return f"{limits}{per_run} per {window} ({budget.timezone})"


def _subject(measure: Measure) -> list[Part]:
    budget = measure.budget
    name = f'"{budget.name}"'
    if budget.scope == "global":
        return [f"Budget {name}"]
    if measure.per_key:
        return [f"Budget {name} for {budget.scope} ", Label("scope_key")]
    noun = budget.scope
    if noun.startswith("attribute:"):
        noun = f"value of attribute {noun.removeprefix('attribute:')}"
    return [f"The most used {noun} of budget {name}"]


def _severity(budget: Budget, kind: str) -> str:
    if budget.action == "observe":
        return "info"
    # A shared counter (global, model, provider) running dry stops everyone; one session
    # or run reaching its own cap is the budget doing its job.
    shared = budget.scope in LABELED_SCOPES
    if kind == "exhausted":
        return "critical" if shared and budget.action == "raise" else "warning"
    return "warning" if shared else "info"


def _consequence(budget: Budget) -> str:
    if budget.action == "raise":
        resets = "" if budget.window == "none" else " until the window moves on"
        return f"further calls are refused{resets}"
    if budget.action == "warn":
        return "calls are still admitted (action warn)"
    return "nothing is refused (action observe, a dry run)"


def _base_labels(measure: Measure, kind: str) -> dict[str, str]:
    labels = {
        "severity": _severity(measure.budget, kind),
        "budget": measure.budget.name,
        "scope": measure.budget.scope,
    }
    return labels


def forecast_shape(budget: Budget) -> tuple[int, int, int | None]:
    """(look-back seconds, ``for`` seconds, calendar window length or None for rolling)."""
    spec = parse_window(budget.window, budget.timezone)
    if spec.kind in _CALENDAR:
        lookback, for_s, length = _CALENDAR[spec.kind]
        return lookback, for_s, length
    # Rolling: a quarter of the window, in whole minutes, between 10 minutes and 6 hours.
    lookback = min(max(spec.rolling_s // 4 // 60 * 60, 600), 6 * 3600)
    for_s = min(max(lookback // 4 // 60 * 60, 60), 30 * 60)
    return lookback, for_s, None


def threshold_rules(measure: Measure) -> list[tuple[Rule, float, float]]:
    """One rule per ``warn_at`` fraction, with the band ``[low, high)`` it holds in."""
    budget = measure.budget
    warn_at = list(budget.warn_at)
    rules = []
    for index, threshold in enumerate(warn_at):
        upper = warn_at[index + 1] if index + 1 < len(warn_at) else 1.0
        labels = {**_base_labels(measure, "threshold"), "threshold": number(threshold)}
        subject = _subject(measure)
        rule = Rule(
            alert=ALERT_THRESHOLD,
            expr=f"(\n{_indent(measure.ratio())}\n) >= {number(threshold)} < {number(upper)}",
            labels=labels,
            summary=(*subject, " is at ", Value(), f" of its limit of {_limits_phrase(measure)}"),
            description=(
                *subject,
                " has used ",
                Value(),
                f' of its limit of {_limits_phrase(measure)}. Budget "{budget.name}" warns at '
                f"{', '.join(_percent(t) for t in warn_at)}; at 100% {_consequence(budget)}. "
                f"This alert holds from {_percent(threshold)} up to {_percent(upper)}.",
            ),
        )
        rules.append((rule, threshold, upper))
    return rules


def exhausted_rule(measure: Measure) -> Rule:
    """The rule firing when usage reaches the limit."""
    subject = _subject(measure)
    return Rule(
        alert=ALERT_EXHAUSTED,
        expr=f"(\n{_indent(measure.ratio())}\n) >= 1",
        labels=_base_labels(measure, "exhausted"),
        summary=(*subject, f" has used up its limit of {_limits_phrase(measure)}"),
        description=(
            *subject,
            " is at ",
            Value(),
            f" of its limit of {_limits_phrase(measure)}: {_consequence(measure.budget)}.",
        ),
    )


def forecast_rule(measure: Measure) -> Rule:
    """The rule firing when the recent rate would exhaust the budget before its window ends."""
    budget = measure.budget
    lookback, for_s, length = forecast_shape(budget)
    if length is not None:
        horizon = f"scalar(max({_WINDOW_END}{{budget={promql_quote(budget.name)}}})) - time()"
        when = f"before the current {budget.window} window ends"
    else:
        horizon = str(lookback)
        when = f"within {duration(lookback)}"
    predicted = (
        f"max by ({measure.by()}) (\n"
        f"  predict_linear({measure.spent_selector()}[{duration(lookback)}], {horizon})\n"
        ")"
    )
    forecast = measure.over_limit(predicted)
    expr = (
        f"(\n{_indent(forecast)}\n) >= 1\n"
        f"unless on ({measure.by()})\n"
        f"(\n{_indent(measure.ratio())}\n) >= 1"
    )
    subject = _subject(measure)
    return Rule(
        alert=ALERT_FORECAST,
        expr=expr,
        labels=_base_labels(measure, "forecast"),
        for_s=for_s,
        summary=(*subject, f" is forecast to use up its limit {when}"),
        description=(
            *subject,
            f" will reach its limit of {_limits_phrase(measure)} {when} if it goes on at the "
            f"rate of the last {duration(lookback)}; then {_consequence(budget)}.",
        ),
    )


def denied_rule(budget: Budget) -> Rule:
    """The rule firing when a ``raise`` budget refused calls in the last 5 minutes.

    ``increase()`` needs two samples of a series, so it sees the first denial only
    because the enforcer creates the decision series at 0 when the budgets load.
    """
    measure = Measure(budget=budget)
    return Rule(
        alert=ALERT_CALLS_DENIED,
        expr=(
            f"sum by (budget) (\n"
            f'  increase({_DECISIONS}{{budget={promql_quote(budget.name)},decision="denied"}}'
            f"[{_DENIED_RANGE}])\n"
            ") > 0"
        ),
        labels=_base_labels(measure, "exhausted"),
        summary=(f'Budget "{budget.name}" is refusing calls',),
        description=(
            f'Budget "{budget.name}" (scope {budget.scope}) refused calls in the last '
            f"{_DENIED_RANGE}: spent plus requested would have exceeded its limit of "
            f"{_limits_phrase(measure)}.",
        ),
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def rules_of(budget: Budget) -> list[Rule]:
    """Every alerting rule of ``budget``, in the order of the rules file."""
    measure = Measure(budget=budget)
    rules = [rule for rule, _, _ in threshold_rules(measure)]
    rules.append(exhausted_rule(measure))
    if budget.window != "none":
        rules.append(forecast_rule(measure))
    if budget.action == "raise":
        rules.append(denied_rule(budget))
    return rules
