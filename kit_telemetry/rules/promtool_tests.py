"""Rule tests: the ``promtool test rules`` file that proves the generated rules.

Each budget gets test groups built from the same ``specs`` as its rules: series that
step through every ``warn_at`` band to exhaustion, spend forecast to run out (windowed
budgets) and refused calls (``raise`` budgets: the first denial, a step from 0 to 1),
with exactly the alerts expected at each step, including steps where none fires. Series
start at 0, as the enforcer exports them from the moment the budgets load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..budgets.config import Budget, BudgetConfig
from ..metrics import KIT_BUDGET_DECISIONS as _DECISIONS
from ..metrics import KIT_BUDGET_MAX_UTILIZATION as _MAX_UTILIZATION
from ..metrics import KIT_BUDGET_SPENT_USD as _SPENT_USD
from ..metrics import KIT_BUDGET_WINDOW_END as _WINDOW_END
from .specs import (
    ALERT_CALLS_DENIED,
    ALERT_EXHAUSTED,
    ALERT_FORECAST,
    ALERT_THRESHOLD,
    RULES_FILENAME,
    Label,
    Measure,
    Part,
    Rule,
    Value,
    denied_rule,
    exhausted_rule,
    forecast_rule,
    forecast_shape,
    number,
    promql_quote,
    threshold_rules,
)
from .yaml_writer import YamlValue, file_header, yaml_document

__all__ = ["generate_rule_tests"]


def _rendered(parts: Sequence[Part], labels: Mapping[str, str], value: float | None) -> str:
    out = []
    for part in parts:
        if isinstance(part, Label):
            out.append(labels[part.name])
        elif isinstance(part, Value):
            assert value is not None
            # Prometheus' humanizePercentage is Go's fmt "%.4g%%" of value * 100; Python's
            # "%.4g" rounds the same binary value the same way.
            out.append(f"{value * 100:.4g}%")
        else:
            out.append(part)
    return "".join(out)


@dataclass(slots=True, kw_only=True)
class _Expect:
    """One alert expected to fire: its labels from the expression and its $value."""

    rule: Rule
    labels: dict[str, str]
    value: float | None


@dataclass(slots=True, kw_only=True)
class _Case:
    """One promtool test group: input series and the alerts expected at each time."""

    name: str
    series: list[tuple[str, str]] = field(default_factory=list)
    checks: list[tuple[int, str, list[_Expect]]] = field(default_factory=list)


# --- test cases -------------------------------------------------------------------------

# Example scope keys for the test series: one that crosses everything, one that stays quiet.
_EXAMPLE_KEYS: dict[str, tuple[str, str | None]] = {
    "global": ("global", None),
    "model": ("gpt-4o", "gpt-4o-mini"),
    "provider": ("openai", "anthropic"),
}


def _keys(budget: Budget) -> tuple[str, str | None]:
    return _EXAMPLE_KEYS.get(budget.scope, ("key-a", "key-b"))


def _spent_series(measure: Measure, key: str | None) -> str:
    budget = promql_quote(measure.budget.name)
    if not measure.per_key:
        return f"{_MAX_UTILIZATION}{{budget={budget}}}"
    return f"{_SPENT_USD}{{budget={budget},scope_key={promql_quote(key or '')}}}"


def _result_labels(measure: Measure, key: str | None) -> dict[str, str]:
    labels = {"budget": measure.budget.name}
    if measure.per_key:
        labels["scope_key"] = str(key)
    return labels


def _values(points: Iterable[float]) -> str:
    return " ".join(number(p) for p in points)


def _usage_case(measure: Measure) -> _Case:
    """Usage steps through every band: below the first threshold, each band, 100%, over."""
    budget = measure.budget
    thresholds = threshold_rules(measure)
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
    exhausted = exhausted_rule(measure)
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


def _forecast_case(measure: Measure) -> _Case:
    """Spend rises fast enough to run out before the window ends, while still under half."""
    budget = measure.budget
    rule = forecast_rule(measure)
    _, for_s, length = forecast_shape(budget)
    at = for_s // 60 + 2  # minutes: pending from minute 1 (two samples), firing after `for`
    case = _Case(name=f"budget {budget.name!r}: forecast")
    limit = float(budget.limit_usd or 0.0) if measure.per_key else 1.0
    rate = limit / (2 * at)  # per minute: half the limit is used at `at`
    busy, quiet = _keys(budget)
    case.series.append((_spent_series(measure, busy), f"0+{number(rate)}x{at}"))
    if measure.per_key:
        if quiet is not None:
            case.series.append((_spent_series(measure, quiet), f"{number(limit / 10)}+0x{at}"))
        case.series.append((measure.limit_selector(), f"{number(limit)}+0x{at}"))
    if length is not None:
        # Test time starts at the Unix epoch, so the window ends `length` seconds in.
        window_end = f"{_WINDOW_END}{{budget={promql_quote(budget.name)}}}"
        case.series.append((window_end, f"{length}+0x{at}"))
    case.checks.append((1, ALERT_FORECAST, []))
    case.checks.append(
        (at, ALERT_FORECAST, [_Expect(rule=rule, labels=_result_labels(measure, busy), value=None)])
    )
    return case


def _denied_case(budget: Budget) -> _Case:
    """The first denial fires: the series exists at 0 from load, then steps to 1.

    Both decision series start at 0 (the enforcer creates them when budgets load); the
    alert must fire on the step to 1, hold while it is in the range, and clear after.
    """
    rule = denied_rule(budget)
    name = promql_quote(budget.name)
    case = _Case(name=f"budget {budget.name!r}: calls denied")
    case.series.append((f'{_DECISIONS}{{budget={name},decision="allowed"}}', "0 0 1 2 3 4 5 6 7 8"))
    case.series.append((f'{_DECISIONS}{{budget={name},decision="denied"}}', "0 0 0 1 1 1 1 1 1 1"))
    fired = [_Expect(rule=rule, labels={"budget": budget.name}, value=None)]
    case.checks.append((2, ALERT_CALLS_DENIED, []))
    case.checks.append((3, ALERT_CALLS_DENIED, fired))
    case.checks.append((7, ALERT_CALLS_DENIED, fired))
    case.checks.append((9, ALERT_CALLS_DENIED, []))
    return case


def _cases_of(budget: Budget) -> list[_Case]:
    measure = Measure(budget=budget)
    cases = [_usage_case(measure)]
    if budget.window != "none":
        cases.append(_forecast_case(measure))
    if budget.action == "raise":
        cases.append(_denied_case(budget))
    return cases


def generate_rule_tests(config: BudgetConfig) -> str:
    """A ``promtool test rules`` file proving the rules of :func:`generate_rules`.

    For each budget it feeds series that step through every ``warn_at`` band to
    exhaustion, spend that is forecast to run out (windowed budgets) and refused calls
    (``raise`` budgets), and states exactly which alerts fire at each step, including
    steps where none does. It expects the rules file beside it under
    :data:`RULES_FILENAME`.
    """
    tests: list[YamlValue] = []
    for budget in config.budgets:
        for case in _cases_of(budget):
            checks: list[YamlValue] = []
            for minute, alertname, expected in case.checks:
                alerts: list[YamlValue] = []
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
    header = file_header(
        "promtool tests for kit-telemetry-budgets.rules.yml: promtool test rules THIS_FILE"
    )
    document: dict[str, YamlValue] = {
        "rule_files": [RULES_FILENAME],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    return yaml_document(header, document)
