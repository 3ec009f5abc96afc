"""Budget status: each budget's figures, as ``BudgetStatus`` rows and as metrics.

``BudgetMetrics`` is the seam the figures leave by (``KitMetrics`` implements it);
``_BudgetReporter`` feeds it for the enforcer, best effort: a broken exporter must never
break admission. Every budget's series exist from the moment the budgets load (limits,
decision and alert counters at 0, spend, utilisation and window end read from the ledger)
and are kept current after each commit, so alert rules see the first denial as an
increase. Per-scope-key spend of many-keyed budgets (session, run, user, ...) cannot exist
before its keys do: those budgets export an unlabelled total and the highest utilisation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .ledger import MICROS_PER_USD, Counter, CounterStatus
from .plans import _CACHE_LIMIT, _Plan

__all__ = ["BudgetMetrics", "BudgetStatus"]

logger = logging.getLogger("kit_telemetry")

_EXCEEDED = 1.0  # the threshold value of an "exceeded" alert

_LOW_CARDINALITY_SCOPES = ("global", "model", "provider")


class BudgetMetrics(Protocol):
    """The budget gauges and counters of the metric catalogue (``KitMetrics`` implements them)."""

    def set_budget_limit(self, budget: str, unit: str, limit: float) -> None:
        """``kit_budget_limit_usd`` / ``kit_budget_limit{unit}``."""
        ...

    def set_budget_usage(
        self, budget: str, scope_key: str | None, spent_usd: float, reserved_usd: float
    ) -> None:
        """``kit_budget_spent_usd`` and ``kit_budget_reserved_usd``."""
        ...

    def set_budget_max_utilization(self, budget: str, ratio: float) -> None:
        """``kit_budget_max_utilization_ratio``."""
        ...

    def set_budget_window_end(self, budget: str, timestamp_s: float) -> None:
        """``kit_budget_window_end_timestamp_seconds``."""
        ...

    def record_budget_decision(self, budget: str, decision: str) -> None:
        """``kit_budget_decisions_total{decision=allowed|denied|warned}``."""
        ...

    def declare_budget_counters(self, budget: str, alerts: Sequence[tuple[str, str]]) -> None:
        """Create the budget's counters at 0: every decision, and each ``(kind, threshold)``
        alert, so ``increase()`` sees the first real one as a step from 0 to 1."""
        ...

    def record_budget_alert(self, budget: str, kind: str, threshold: str) -> None:
        """``kit_budget_alerts_total``."""
        ...

    def record_internal_error(self, component: str) -> None:
        """``kit_telemetry_internal_errors_total``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetStatus:
    """One budget's figures for one scope key and unit in the current window.

    Money is in USD; tokens and calls are counts.

    Attributes:
        name: the budget's name.
        scope_key: ``global``, a session id, a model, ...
        unit: ``usd``, ``tokens``, ``llm_calls`` or ``tool_calls``.
        limit: the limit.
        spent: committed in the current window.
        reserved: in-flight reservations.
        remaining: ``limit - spent - reserved``, never below 0.
        window_end: Unix seconds when the window resets, or None.
    """

    name: str
    scope_key: str
    unit: str
    limit: float
    spent: float
    reserved: float
    remaining: float
    window_end: float | None


def _display(unit: str, amount: float) -> float:
    """A counter amount at the edge: USD for money, counts otherwise."""
    return amount / MICROS_PER_USD if unit == "usd" else float(amount)


class _SpendTotal:
    """A many-keyed budget's USD in one window, over the scope keys this process saw.

    Such budgets export one unlabelled ``kit_budget_spent_usd`` series (their keys are too
    many to label); this keeps it current between ``status()`` calls, which reset it from
    the ledger. Past ``_CACHE_LIMIT`` keys the oldest is forgotten: its spend stays in the
    total, its reservation leaves it.
    """

    __slots__ = ("keys", "reserved", "spent", "window_start")

    def __init__(self, window_start: float) -> None:
        self.window_start = window_start
        self.keys: dict[str, tuple[int, int]] = {}
        self.spent = 0
        self.reserved = 0

    def update(self, scope_key: str, spent: int, reserved: int) -> None:
        """Set one key's figures (micro-USD) and adjust the totals."""
        old_spent, old_reserved = self.keys.pop(scope_key, (0, 0))
        self.spent += spent - old_spent
        self.reserved += reserved - old_reserved
        if len(self.keys) >= _CACHE_LIMIT:
            _, forgotten = self.keys.pop(next(iter(self.keys)))  # the least recently updated
            self.reserved -= forgotten
        self.keys[scope_key] = (spent, reserved)


class _BudgetReporter:
    """The enforcer's budget metrics and status rows; every metric call is best effort.

    Args:
        metrics: the budget gauges and counters; None records nothing.
    """

    __slots__ = ("_lock", "_max_ratio", "_totals", "_window_end", "metrics")

    def __init__(self, metrics: BudgetMetrics | None) -> None:
        self.metrics = metrics
        self._lock = threading.Lock()
        self._max_ratio: dict[str, tuple[float, float]] = {}
        self._window_end: dict[str, float] = {}
        self._totals: dict[str, _SpendTotal] = {}

    def metric(self, method: str, *args: object) -> None:
        # Metrics are best effort: a broken exporter must not break admission.
        metrics = self.metrics
        if metrics is None:
            return
        try:
            getattr(metrics, method)(*args)
        except Exception:
            logger.warning("budget metric %s failed", method, exc_info=True)

    def internal_error(self, component: str, message: str) -> None:
        """Log the exception being handled and count it in the internal-errors counter."""
        logger.error("%s", message, exc_info=True)
        if self.metrics is not None:
            try:
                self.metrics.record_internal_error(component)
            except Exception:
                logger.warning("recording an internal error failed", exc_info=True)

    def declare(self, plans: Iterable[_Plan]) -> None:
        """Create every budget's limit gauges and its counters at 0, when budgets load.

        Limits change only with the configuration. Decision and alert counters are
        created at 0 for every decision and for every alert the budget can send (a
        warning per ``warn_at`` fraction, ``exceeded`` at 1), so that Prometheus sees the
        first denial or alert as an increase rather than a series appearing at 1.
        """
        if self.metrics is None:
            return
        for plan in plans:
            for unit, limit in plan.limits.items():
                self.metric("set_budget_limit", plan.name, unit, _display(unit, limit))
            alerts = [("warning", f"{t:g}") for t in plan.warn_at]
            alerts.append(("exceeded", f"{_EXCEEDED:g}"))
            self.metric("declare_budget_counters", plan.name, alerts)

    def statuses(
        self, plans: Sequence[_Plan], live: Iterable[CounterStatus], now: float
    ) -> list[BudgetStatus]:
        """Every budget's figures per live scope key and unit in the window at ``now``.

        Also sets the budget gauges (see ``BudgetEnforcer.status``).
        """
        by_budget: dict[str, list[CounterStatus]] = {}
        for status in live:
            by_budget.setdefault(status.counter.budget, []).append(status)
        out: list[BudgetStatus] = []
        for plan in plans:
            window = plan.window(now)
            start, end = window.start, window.end
            rows = [
                s
                for s in by_budget.get(plan.name, ())
                if s.counter.unit in plan.limits and s.counter.window_start == start
            ]
            if not rows and plan.budget.scope == "global":
                rows = [
                    CounterStatus(counter=plan.counter(window, unit, "global"), spent=0, reserved=0)
                    for unit in plan.limits
                ]
            units = list(plan.limits)
            rows.sort(key=lambda s: (s.counter.scope_key, units.index(s.counter.unit)))
            for row in rows:
                unit = row.counter.unit
                limit = plan.limits[unit]
                out.append(
                    BudgetStatus(
                        name=plan.name,
                        scope_key=row.counter.scope_key,
                        unit=unit,
                        limit=_display(unit, limit),
                        spent=_display(unit, row.spent),
                        reserved=_display(unit, row.reserved),
                        remaining=_display(unit, max(0, limit - row.spent - row.reserved)),
                        window_end=end,
                    )
                )
            if self.metrics is not None:
                self._status_metrics(plan, rows, start, end)
        return out

    def usage(self, plan: _Plan, counter: Counter, spent: int, reserved: int) -> None:
        """Gauges after a commit: USD usage, the highest utilisation, the window end.

        Few-keyed budgets get their key's USD series; many-keyed ones their unlabelled
        total (see :class:`_SpendTotal`).
        """
        name = plan.name
        if counter.unit == "usd":
            if plan.budget.scope in _LOW_CARDINALITY_SCOPES:
                self.metric(
                    "set_budget_usage",
                    name,
                    counter.scope_key,
                    _display("usd", spent),
                    _display("usd", reserved),
                )
            else:
                with self._lock:
                    total = self._totals.get(name)
                    if total is None or total.window_start != counter.window_start:
                        total = self._totals[name] = _SpendTotal(counter.window_start)
                    total.update(counter.scope_key, spent, reserved)
                    # Set under the lock: another thread's older total must not land last.
                    self.metric(
                        "set_budget_usage",
                        name,
                        None,
                        _display("usd", total.spent),
                        _display("usd", total.reserved),
                    )
        end = counter.window_end
        if end is not None and self._window_end.get(name) != end:
            self._window_end[name] = end
            self.metric("set_budget_window_end", name, end)
        ratio = spent / counter.limit
        window_start, best = self._max_ratio.get(name, (counter.window_start, 0.0))
        if window_start != counter.window_start:
            best = 0.0  # a new window starts from zero
        if ratio > best or window_start != counter.window_start:
            self._max_ratio[name] = (counter.window_start, max(ratio, best))
            self.metric("set_budget_max_utilization", name, max(ratio, best))

    def _status_metrics(
        self, plan: _Plan, rows: list[CounterStatus], start: float, end: float | None
    ) -> None:
        best = 0.0
        few_keys = plan.budget.scope in _LOW_CARDINALITY_SCOPES
        total = _SpendTotal(start)
        for row in rows:
            best = max(best, row.spent / row.counter.limit)
            if row.counter.unit != "usd":
                continue
            total.update(row.counter.scope_key, row.spent, row.reserved)
            if few_keys:
                self.metric(
                    "set_budget_usage",
                    plan.name,
                    row.counter.scope_key,
                    _display("usd", row.spent),
                    _display("usd", row.reserved),
                )
        if not few_keys and "usd" in plan.limits:
            # Too many keys to label: the budget's total over its live keys, unlabelled.
            with self._lock:
                self._totals[plan.name] = total
                self.metric(
                    "set_budget_usage",
                    plan.name,
                    None,
                    _display("usd", total.spent),
                    _display("usd", total.reserved),
                )
        self._max_ratio[plan.name] = (start, best)
        self.metric("set_budget_max_utilization", plan.name, best)
        if end is not None:
            self._window_end[plan.name] = end
            self.metric("set_budget_window_end", plan.name, end)
