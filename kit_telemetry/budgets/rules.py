"""Prometheus alerting rules for budgets, with a ``promtool test rules`` file that proves them.

For each budget, from the budget gauges of the metric catalogue (metrics.md):

- ``KitBudgetThresholdCrossed``, one rule per ``warn_at`` fraction, holding while usage is
  in ``[threshold, next threshold or 1)`` so that only the highest crossed one fires;
- ``KitBudgetExhausted`` when usage reaches the limit;
- ``KitBudgetForecastExhausted`` for windowed budgets: at the rate of the recent past the
  limit will be reached before the window ends (calendar windows, using
  ``kit_budget_window_end_timestamp_seconds``) or within a horizon (rolling windows);
- ``KitBudgetCallsDenied`` for ``raise`` budgets: calls were refused in the last 5 minutes.

USD budgets of the few-keyed scopes (``global``, ``model``, ``provider``) have their spend
exported per scope key, so their rules divide ``kit_budget_spent_usd`` by
``kit_budget_limit_usd`` and alert per key. Every other budget (many-keyed scopes, token
and call limits) is watched through ``kit_budget_max_utilization_ratio``, the highest
spent/limit over its keys and units. Series are reduced with ``max`` first, so several
scraped processes sharing a ledger do not duplicate alerts.

The YAML is written by hand (no YAML dependency): strings are quoted with escapes, and
multi-line PromQL is a literal block.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeAlias

from ..metrics import KIT_BUDGET_DECISIONS as _DECISIONS
from ..metrics import KIT_BUDGET_LIMIT_USD as _LIMIT_USD
from ..metrics import KIT_BUDGET_MAX_UTILIZATION as _MAX_UTILIZATION
from ..metrics import KIT_BUDGET_SPENT_USD as _SPENT_USD
from ..metrics import KIT_BUDGET_WINDOW_END as _WINDOW_END
from .config import Budget, BudgetConfig
from .windows import parse_window

__all__ = [
    "ALERT_CALLS_DENIED",
    "ALERT_EXHAUSTED",
    "ALERT_FORECAST",
    "ALERT_THRESHOLD",
    "RULES_FILENAME",
    "RULES_TEST_FILENAME",
    "generate_rule_tests",
    "generate_rules",
    "write_rules",
]

RULES_FILENAME = "kit-telemetry-budgets.rules.yml"
RULES_TEST_FILENAME = "kit-telemetry-budgets.rules.test.yml"

ALERT_THRESHOLD = "KitBudgetThresholdCrossed"
ALERT_EXHAUSTED = "KitBudgetExhausted"
ALERT_FORECAST = "KitBudgetForecastExhausted"
ALERT_CALLS_DENIED = "KitBudgetCallsDenied"

# Scopes whose keys are few enough to be a label (metrics.md, kit_budget_spent_usd).
LABELED_SCOPES = frozenset({"global", "model", "provider"})
_DENIED_RANGE = "5m"

# Calendar windows: (look-back of the rate, "for" of the forecast alert, length in seconds).
_CALENDAR = {
    "hour": (15 * 60, 5 * 60, 3600),
    "day": (3600, 15 * 60, 86_400),
    "week": (6 * 3600, 30 * 60, 7 * 86_400),
    "month": (86_400, 3600, 30 * 86_400),
}
_UNIT_NOUNS = {"tokens": "tokens", "llm_calls": "LLM calls", "tool_calls": "tool calls"}


# --- text that is a Go template in the rules and plain text in the tests' expectations ---


@dataclass(frozen=True, slots=True)
class _Label:
    name: str


@dataclass(frozen=True, slots=True)
class _Value:
    pass


_Part: TypeAlias = "str | _Label | _Value"


def _template(parts: Sequence[_Part]) -> str:
    out = []
    for part in parts:
        if isinstance(part, _Label):
            out.append(f"{{{{ $labels.{part.name} }}}}")
        elif isinstance(part, _Value):
            out.append("{{ $value | humanizePercentage }}")
        else:
            # A budget name containing "{{" must stay text, not start a template action.
            out.append(part.replace("{{", '{{ "{{" }}'))
    return "".join(out)


def _rendered(parts: Sequence[_Part], labels: Mapping[str, str], value: float | None) -> str:
    out = []
    for part in parts:
        if isinstance(part, _Label):
            out.append(labels[part.name])
        elif isinstance(part, _Value):
            assert value is not None
            # Prometheus' humanizePercentage is Go's fmt "%.4g%%" of value * 100; Python's
            # "%.4g" rounds the same binary value the same way.
            out.append(f"{value * 100:.4g}%")
        else:
            out.append(part)
    return "".join(out)


# --- the plan: rules and their test cases, built together so they cannot drift apart ----


@dataclass(frozen=True, slots=True, kw_only=True)
class _Rule:
    alert: str
    expr: str
    labels: dict[str, str]
    summary: tuple[_Part, ...]
    description: tuple[_Part, ...]
    for_s: int = 0


@dataclass(slots=True, kw_only=True)
class _Expect:
    """One alert expected to fire: its labels from the expression and its $value."""

    rule: _Rule
    labels: dict[str, str]
    value: float | None


@dataclass(slots=True, kw_only=True)
class _Case:
    """One promtool test group: input series and the alerts expected at each time."""

    name: str
    series: list[tuple[str, str]] = field(default_factory=list)
    checks: list[tuple[int, str, list[_Expect]]] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Measure:
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
        return f"{metric}{{budget={_q(self.budget.name)}}}"

    def by(self) -> str:
        return "budget, scope_key" if self.per_key else "budget"

    def limit_selector(self) -> str:
        return f"{_LIMIT_USD}{{budget={_q(self.budget.name)}}}"

    def over_limit(self, spent: str) -> str:
        """PromQL for ``spent`` (reduced ``by(...)``) as a fraction of the limit."""
        if not self.per_key:
            return spent
        return (
            f"{spent}\n  / on (budget) group_left ()\nmax by (budget) ({self.limit_selector()} > 0)"
        )

    def ratio(self) -> str:
        return self.over_limit(f"max by ({self.by()}) ({self.spent_selector()})")


def _q(text: str) -> str:
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


def _number(value: float) -> str:
    return repr(float(value))


def _duration(seconds: int) -> str:
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
    }[unit]
    return f"{limit:,} {_UNIT_NOUNS[unit]}"


def _limits_phrase(measure: _Measure) -> str:
    budget = measure.budget
    limits = " or ".join(_limit_text(budget, unit) for unit in budget.units)
    per_run = " per run" if budget.scope == "run" else ""
    window = budget.window
    if window == "none":
        return limits + per_run
    if window.startswith("rolling:"):
        return f"{limits}{per_run} per rolling {window.removeprefix('rolling:')}"
    return f"{limits}{per_run} per {window} ({budget.timezone})"


def _subject(measure: _Measure) -> list[_Part]:
    budget = measure.budget
    name = f'"{budget.name}"'
    if budget.scope == "global":
        return [f"Budget {name}"]
    if measure.per_key:
        return [f"Budget {name} for {budget.scope} ", _Label("scope_key")]
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


def _base_labels(measure: _Measure, kind: str) -> dict[str, str]:
    labels = {
        "severity": _severity(measure.budget, kind),
        "budget": measure.budget.name,
        "scope": measure.budget.scope,
    }
    return labels


def _forecast_shape(budget: Budget) -> tuple[int, int, int | None]:
    """(look-back seconds, ``for`` seconds, calendar window length or None for rolling)."""
    spec = parse_window(budget.window, budget.timezone)
    if spec.kind in _CALENDAR:
        lookback, for_s, length = _CALENDAR[spec.kind]
        return lookback, for_s, length
    # Rolling: a quarter of the window, in whole minutes, between 10 minutes and 6 hours.
    lookback = min(max(spec.rolling_s // 4 // 60 * 60, 600), 6 * 3600)
    for_s = min(max(lookback // 4 // 60 * 60, 60), 30 * 60)
    return lookback, for_s, None


def _threshold_rules(measure: _Measure) -> list[tuple[_Rule, float, float]]:
    budget = measure.budget
    warn_at = list(budget.warn_at)
    rules = []
    for index, threshold in enumerate(warn_at):
        upper = warn_at[index + 1] if index + 1 < len(warn_at) else 1.0
        labels = {**_base_labels(measure, "threshold"), "threshold": _number(threshold)}
        subject = _subject(measure)
        rule = _Rule(
            alert=ALERT_THRESHOLD,
            expr=f"(\n{_indent(measure.ratio())}\n) >= {_number(threshold)} < {_number(upper)}",
            labels=labels,
            summary=(*subject, " is at ", _Value(), f" of its limit of {_limits_phrase(measure)}"),
            description=(
                *subject,
                " has used ",
                _Value(),
                f' of its limit of {_limits_phrase(measure)}. Budget "{budget.name}" warns at '
                f"{', '.join(_percent(t) for t in warn_at)}; at 100% {_consequence(budget)}. "
                f"This alert holds from {_percent(threshold)} up to {_percent(upper)}.",
            ),
        )
        rules.append((rule, threshold, upper))
    return rules


def _exhausted_rule(measure: _Measure) -> _Rule:
    subject = _subject(measure)
    return _Rule(
        alert=ALERT_EXHAUSTED,
        expr=f"(\n{_indent(measure.ratio())}\n) >= 1",
        labels=_base_labels(measure, "exhausted"),
        summary=(*subject, f" has used up its limit of {_limits_phrase(measure)}"),
        description=(
            *subject,
            " is at ",
            _Value(),
            f" of its limit of {_limits_phrase(measure)}: {_consequence(measure.budget)}.",
        ),
    )


def _forecast_rule(measure: _Measure) -> _Rule:
    budget = measure.budget
    lookback, for_s, length = _forecast_shape(budget)
    if length is not None:
        horizon = f"scalar(max({_WINDOW_END}{{budget={_q(budget.name)}}})) - time()"
        when = f"before the current {budget.window} window ends"
    else:
        horizon = str(lookback)
        when = f"within {_duration(lookback)}"
    predicted = (
        f"max by ({measure.by()}) (\n"
        f"  predict_linear({measure.spent_selector()}[{_duration(lookback)}], {horizon})\n"
        ")"
    )
    forecast = measure.over_limit(predicted)
    expr = (
        f"(\n{_indent(forecast)}\n) >= 1\n"
        f"unless on ({measure.by()})\n"
        f"(\n{_indent(measure.ratio())}\n) >= 1"
    )
    subject = _subject(measure)
    return _Rule(
        alert=ALERT_FORECAST,
        expr=expr,
        labels=_base_labels(measure, "forecast"),
        for_s=for_s,
        summary=(*subject, f" is forecast to use up its limit {when}"),
        description=(
            *subject,
            f" will reach its limit of {_limits_phrase(measure)} {when} if it goes on at the "
            f"rate of the last {_duration(lookback)}; then {_consequence(budget)}.",
        ),
    )


def _denied_rule(budget: Budget) -> _Rule:
    measure = _Measure(budget=budget)
    return _Rule(
        alert=ALERT_CALLS_DENIED,
        expr=(
            f"sum by (budget) (\n"
            f'  increase({_DECISIONS}{{budget={_q(budget.name)},decision="denied"}}'
            f"[{_DENIED_RANGE}])\n"
            ") > 0"
        ),
        labels=_base_labels(measure, "exhausted"),
        summary=(f'Budget "{budget.name}" is refusing calls',),
        description=(
            f'Budget "{budget.name}" (scope {budget.scope}) refused calls in the last '
            f"{_DENIED_RANGE}: its limit of {_limits_phrase(measure)} was reached.",
        ),
    )


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


def _rules_of(budget: Budget) -> list[_Rule]:
    measure = _Measure(budget=budget)
    rules = [rule for rule, _, _ in _threshold_rules(measure)]
    rules.append(_exhausted_rule(measure))
    if budget.window != "none":
        rules.append(_forecast_rule(measure))
    if budget.action == "raise":
        rules.append(_denied_rule(budget))
    return rules


# --- test cases -------------------------------------------------------------------------

# Example scope keys for the test series: one that crosses everything, one that stays quiet.
_EXAMPLE_KEYS: dict[str, tuple[str, str | None]] = {
    "global": ("global", None),
    "model": ("gpt-4o", "gpt-4o-mini"),
    "provider": ("openai", "anthropic"),
}


def _keys(budget: Budget) -> tuple[str, str | None]:
    return _EXAMPLE_KEYS.get(budget.scope, ("key-a", "key-b"))


def _spent_series(measure: _Measure, key: str | None) -> str:
    budget = _q(measure.budget.name)
    if not measure.per_key:
        return f"{_MAX_UTILIZATION}{{budget={budget}}}"
    return f"{_SPENT_USD}{{budget={budget},scope_key={_q(key or '')}}}"


def _result_labels(measure: _Measure, key: str | None) -> dict[str, str]:
    labels = {"budget": measure.budget.name}
    if measure.per_key:
        labels["scope_key"] = str(key)
    return labels


def _values(points: Iterable[float]) -> str:
    return " ".join(_number(p) for p in points)


def _usage_case(measure: _Measure) -> _Case:
    """Usage steps through every band: below the first threshold, each band, 100%, over."""
    budget = measure.budget
    thresholds = _threshold_rules(measure)
    first = thresholds[0][1] if thresholds else 1.0
    ratios = [first / 2, *((low + high) / 2 for _, low, high in thresholds), 1.0, 1.25]
    case = _Case(name=f"budget {budget.name!r}: thresholds and exhaustion")
    busy, quiet = _keys(budget)
    if not measure.per_key:
        case.series.append((_spent_series(measure, None), _values(ratios)))
        observed = ratios
    else:
        limit = float(budget.limit_usd or 0.0)
        spent = [r * limit for r in ratios]
        case.series.append((_spent_series(measure, busy), _values(spent)))
        if quiet is not None:
            case.series.append((_spent_series(measure, quiet), _values(limit / 10 for _ in spent)))
        case.series.append((measure.limit_selector(), _values(limit for _ in spent)))
        # The same float division PromQL does, so $value matches to the last bit.
        observed = [s / limit for s in spent]
    labels = _result_labels(measure, busy)
    exhausted = _exhausted_rule(measure)
    for minute, value in enumerate(observed):
        crossed = [
            _Expect(rule=rule, labels=labels, value=value)
            for rule, low, high in thresholds
            if low <= value < high
        ]
        case.checks.append((minute, ALERT_THRESHOLD, crossed))
        over = [_Expect(rule=exhausted, labels=labels, value=value)] if value >= 1 else []
        case.checks.append((minute, ALERT_EXHAUSTED, over))
    return case


def _forecast_case(measure: _Measure) -> _Case:
    """Spend rises fast enough to run out before the window ends, while still under half."""
    budget = measure.budget
    rule = _forecast_rule(measure)
    _, for_s, length = _forecast_shape(budget)
    at = for_s // 60 + 2  # minutes: pending from minute 1 (two samples), firing after `for`
    case = _Case(name=f"budget {budget.name!r}: forecast")
    limit = float(budget.limit_usd or 0.0) if measure.per_key else 1.0
    rate = limit / (2 * at)  # per minute: half the limit is used at `at`
    busy, quiet = _keys(budget)
    case.series.append((_spent_series(measure, busy), f"0+{_number(rate)}x{at}"))
    if measure.per_key:
        if quiet is not None:
            case.series.append((_spent_series(measure, quiet), f"{_number(limit / 10)}+0x{at}"))
        case.series.append((measure.limit_selector(), f"{_number(limit)}+0x{at}"))
    if length is not None:
        # Test time starts at the Unix epoch, so the window ends `length` seconds in.
        window_end = f"{_WINDOW_END}{{budget={_q(budget.name)}}}"
        case.series.append((window_end, f"{length}+0x{at}"))
    case.checks.append((1, ALERT_FORECAST, []))
    case.checks.append(
        (at, ALERT_FORECAST, [_Expect(rule=rule, labels=_result_labels(measure, busy), value=None)])
    )
    return case


def _denied_case(budget: Budget) -> _Case:
    rule = _denied_rule(budget)
    name = _q(budget.name)
    case = _Case(name=f"budget {budget.name!r}: calls denied")
    case.series.append((f'{_DECISIONS}{{budget={name},decision="allowed"}}', "0+5x6"))
    case.series.append((f'{_DECISIONS}{{budget={name},decision="denied"}}', "0 0 0 1 3 3 3"))
    case.checks.append((2, ALERT_CALLS_DENIED, []))
    case.checks.append(
        (4, ALERT_CALLS_DENIED, [_Expect(rule=rule, labels={"budget": budget.name}, value=None)])
    )
    return case


def _cases_of(budget: Budget) -> list[_Case]:
    measure = _Measure(budget=budget)
    cases = [_usage_case(measure)]
    if budget.window != "none":
        cases.append(_forecast_case(measure))
    if budget.action == "raise":
        cases.append(_denied_case(budget))
    return cases


# --- YAML -------------------------------------------------------------------------------

_YamlValue: TypeAlias = "str | int | list[_YamlValue] | dict[str, _YamlValue]"
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DURATION = re.compile(r"[0-9]+[smhdw]")  # never a number or a boolean in YAML
# Plain scalars YAML 1.1 would read as booleans or null.
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _yaml_unprintable(ch: str) -> bool:
    """Characters YAML does not allow raw in a scalar (or reads as a line break)."""
    code = ord(ch)
    return (
        (code < 0x20 and ch != "\n")
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or code in (0x2028, 0x2029, 0xFEFF, 0xFFFE, 0xFFFF)
    )


def _yaml_quoted(text: str) -> str:
    if (
        '"' in text
        and "'" not in text
        and "\n" not in text
        and not any(_yaml_unprintable(ch) for ch in text)
    ):
        # Single quotes need no escapes at all, which keeps PromQL selectors legible.
        return f"'{text}'"
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif _yaml_unprintable(ch):
            out.append(f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _yaml_scalar(value: str | int, indent: int) -> str:
    if isinstance(value, int):
        return str(value)
    lines = value.split("\n")
    if (
        len(lines) > 1
        and not value[:1].isspace()
        and not any(_yaml_unprintable(ch) for ch in value)
        and all(line == line.rstrip() for line in lines)
    ):
        # PromQL reads best as a literal block, which takes every character as it is.
        pad = " " * indent
        return "|-\n" + "\n".join(pad + line if line else "" for line in lines)
    if (_PLAIN.fullmatch(value) and value.lower() not in _YAML_WORDS) or _DURATION.fullmatch(value):
        return value
    return _yaml_quoted(value)


def _yaml_key(key: str) -> str:
    return key if _PLAIN.fullmatch(key) and key.lower() not in _YAML_WORDS else _yaml_quoted(key)


def _yaml_mapping(
    mapping: Mapping[str, _YamlValue], indent: int, lines: list[str], first: str | None = None
) -> None:
    pad = " " * indent
    for index, (key, value) in enumerate(mapping.items()):
        prefix = first if index == 0 and first is not None else pad
        head = f"{prefix}{_yaml_key(key)}:"
        if isinstance(value, dict):
            if value:
                lines.append(head)
                _yaml_mapping(value, indent + 2, lines)
            else:
                lines.append(f"{head} {{}}")
        elif isinstance(value, list):
            if value:
                lines.append(head)
                _yaml_sequence(value, indent + 2, lines)
            else:
                lines.append(f"{head} []")
        else:
            lines.append(f"{head} {_yaml_scalar(value, indent + 2)}")


def _yaml_sequence(items: Sequence[_YamlValue], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            _yaml_mapping(item, indent + 2, lines, first=f"{pad}- ")
        elif isinstance(item, (dict, list)):
            raise TypeError("nested sequences and empty mappings are not emitted")
        else:
            lines.append(f"{pad}- {_yaml_scalar(item, indent + 2)}")


def _yaml_document(header: str, document: Mapping[str, _YamlValue]) -> str:
    lines = [f"# {line}".rstrip() for line in header.strip().split("\n")]
    _yaml_mapping(document, 0, lines)
    return "\n".join(lines) + "\n"


# --- public API -------------------------------------------------------------------------


def _header(what: str) -> str:
    return (
        f"{what}\n"
        "Generated by `kit-telemetry rules BUDGETS.toml -o DIR`; edit the budgets, not this file.\n"
    )


def generate_rules(config: BudgetConfig) -> str:
    """A Prometheus rules file (YAML) with the alerts of every budget in ``config``.

    One rule group per budget, named ``kit-telemetry-budget:<name>``. Each alert has the
    labels ``severity`` (``critical``, ``warning`` or ``info``), ``budget`` and ``scope``
    (plus ``unit`` and ``threshold`` where they apply) and ``summary``/``description``
    annotations. ``promtool check rules`` accepts the output.
    """
    groups: list[_YamlValue] = []
    for budget in config.budgets:
        rules: list[_YamlValue] = []
        for rule in _rules_of(budget):
            entry: dict[str, _YamlValue] = {"alert": rule.alert, "expr": rule.expr}
            if rule.for_s:
                entry["for"] = _duration(rule.for_s)
            entry["labels"] = {k: _template([v]) for k, v in rule.labels.items()}
            entry["annotations"] = {
                "summary": _template(rule.summary),
                "description": _template(rule.description),
            }
            rules.append(entry)
        groups.append({"name": f"kit-telemetry-budget:{budget.name}", "rules": rules})
    header = _header("Prometheus alerting rules for kit-telemetry budgets.")
    return _yaml_document(header, {"groups": groups})


def generate_rule_tests(config: BudgetConfig) -> str:
    """A ``promtool test rules`` file proving the rules of :func:`generate_rules`.

    For each budget it feeds series that step through every ``warn_at`` band to
    exhaustion, spend that is forecast to run out (windowed budgets) and refused calls
    (``raise`` budgets), and states exactly which alerts fire at each step, including
    steps where none does. It expects the rules file beside it under
    :data:`RULES_FILENAME`.
    """
    tests: list[_YamlValue] = []
    for budget in config.budgets:
        for case in _cases_of(budget):
            checks: list[_YamlValue] = []
            for minute, alertname, expected in case.checks:
                alerts: list[_YamlValue] = []
                for exp in expected:
                    labels = {**exp.labels, **exp.rule.labels}
                    alerts.append(
                        {
                            "exp_labels": dict(sorted(labels.items())),
                            "exp_annotations": {
                                "summary": _rendered(exp.rule.summary, labels, exp.value),
                                "description": _rendered(exp.rule.description, labels, exp.value),
                            },
                        }
                    )
                checks.append(
                    {"eval_time": f"{minute}m", "alertname": alertname, "exp_alerts": alerts}
                )
            tests.append(
                {
                    "name": case.name,
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in case.series],
                    "alert_rule_test": checks,
                }
            )
    header = _header(
        "promtool tests for kit-telemetry-budgets.rules.yml: promtool test rules THIS_FILE"
    )
    document: dict[str, _YamlValue] = {
        "rule_files": [RULES_FILENAME],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    return _yaml_document(header, document)


def write_rules(config: BudgetConfig, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the rules file and its promtool test file into ``out_dir`` (created if needed).

    Each file is written to a temporary file in ``out_dir`` and renamed over the old one,
    so Prometheus never loads a half-written rules file.

    Returns:
        The paths of the rules file and the test file.

    Raises:
        OSError: the directory or a file cannot be written.
    """
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    outputs = [
        (directory / RULES_FILENAME, generate_rules(config)),
        (directory / RULES_TEST_FILENAME, generate_rule_tests(config)),
    ]
    for path, text in outputs:
        _write_atomically(path, text)
    return [path for path, _ in outputs]


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file 0600; a rules file is read by the Prometheus user too.
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
