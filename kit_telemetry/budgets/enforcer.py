"""``BudgetEnforcer``: admission before each LLM or tool call, settlement after it.

The enforcer turns a call's context (:class:`CallScope`) into ledger counters, one per
matching budget and unit, and asks the ledger to reserve them all at once. It stays free
of pricing: callers pass the worst-case cost and the actual cost in USD.

Decisions per budget action:

- ``raise``: a call that would take ``spent + reserved`` over the limit is refused with
  :class:`~kit_telemetry.errors.BudgetExceeded` and nothing is reserved anywhere.
- ``warn``: the call is admitted; the would-be excess gives an ``exceeded`` alert and a
  ``warned`` decision.
- ``observe``: counted only (a dry run): no refusals, no alerts.

After settlement each ``warn_at`` crossing and the exhaustion of a budget produce one
:class:`~kit_telemetry.events.BudgetAlertEvent` per threshold, window and scope key, also
across processes and restarts (the ledger records which alerts went out). A refusal by a
``raise`` budget also counts as exhaustion.

Nothing but ``BudgetExceeded`` is raised into the agent: ledger failures follow
``on_ledger_error`` (``allow`` admits, ``deny`` refuses with ``BudgetExceeded`` whose
``spent`` and ``reserved`` are NaN and whose ``__cause__`` is the ``LedgerError``), and are
logged and counted as ``record_internal_error("budget_ledger")``.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import translate
from typing import Protocol

from ..errors import BudgetExceeded
from ..events import BudgetAlertEvent
from .config import Budget, BudgetConfig
from .ledger import (
    IDLE_TTL_S,
    MICROS_PER_USD,
    RUN_IDLE_TTL_S,
    Counter,
    CounterStatus,
    LedgerBackend,
    LedgerError,
    open_ledger,
)
from .windows import WindowSpec, parse_window, window_bounds

__all__ = [
    "Admission",
    "BudgetEnforcer",
    "BudgetMetrics",
    "BudgetStatus",
    "CallScope",
]

logger = logging.getLogger("kit_telemetry")

_LOW_CARDINALITY_SCOPES = ("global", "model", "provider")
_EXCEEDED = 1.0  # the threshold value of an "exceeded" alert
_CACHE_LIMIT = 50_000  # counters and sent alerts remembered locally before starting over


class _ReservationIds:
    """Reservation ids unique across threads, processes and machines."""

    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.tag = uuid.uuid4().hex[:12]
        self.numbers = itertools.count()  # next() on a count is atomic in CPython


_reservation_ids = _ReservationIds()
if hasattr(os, "register_at_fork"):
    # A child forked from one parent must not reuse the parent's ids on a shared ledger.
    os.register_at_fork(after_in_child=_reservation_ids.renew)


class BudgetMetrics(Protocol):
    """The budget gauges and counters of metrics.md (``KitMetrics`` implements them)."""

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

    def record_budget_alert(self, budget: str, kind: str, threshold: str) -> None:
        """``kit_budget_alerts_total``."""
        ...

    def record_internal_error(self, component: str) -> None:
        """``kit_telemetry_internal_errors_total``."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScope:
    """Who is making a call: what budgets match on and count separately.

    Attributes:
        session_id: the session (scope ``session``).
        run_id: the agent run (scope ``run``).
        user: the session's user (scope ``user``); budgets with that scope skip calls
            without one.
        provider: e.g. ``anthropic``.
        model: e.g. ``claude-sonnet-4-5``.
        agent: the agent's name.
        attributes: extra keys for ``attribute:<key>`` scopes and matches.
    """

    session_id: str
    run_id: str
    user: str | None = None
    provider: str = ""
    model: str = ""
    agent: str = ""
    attributes: Mapping[str, str] = field(default_factory=dict)


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


class Admission:
    """A call's reservation, handed to ``settle`` or ``release`` exactly once.

    Attributes:
        scope: the call's scope.
        reservation_id: the ledger's name for the reservation.
        amounts: the counters and what was reserved on each.
        ledger_failed: the ledger could not be reached and the call was let in anyway
            (``on_ledger_error = "allow"``).
    """

    __slots__ = ("_done", "amounts", "ledger_failed", "reservation_id", "scope")

    def __init__(
        self,
        scope: CallScope,
        reservation_id: str,
        amounts: list[tuple[Counter, int]],
        *,
        ledger_failed: bool = False,
    ) -> None:
        self.scope = scope
        self.reservation_id = reservation_id
        self.amounts = amounts
        self.ledger_failed = ledger_failed
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the admission was settled or released already."""
        return self._done

    def __repr__(self) -> str:
        budgets = sorted({counter.budget for counter, _ in self.amounts})
        return f"Admission({self.reservation_id!r}, budgets={budgets}, done={self._done})"


_Getter = Callable[[CallScope], "str | None"]


def _scope_getter(name: str) -> _Getter:
    if name == "global":
        return lambda scope: "global"
    if name == "session":
        return lambda scope: scope.session_id
    if name == "run":
        return lambda scope: scope.run_id
    if name == "model":
        return lambda scope: scope.model
    if name == "provider":
        return lambda scope: scope.provider
    if name == "agent":
        return lambda scope: scope.agent
    if name == "user":
        return lambda scope: scope.user
    key = name.removeprefix("attribute:")
    return lambda scope: scope.attributes.get(key)


class _Window:
    """A plan's current window and the counters built for it (replaced whole on a new window).

    Replacing the object rather than mutating it keeps concurrent callers consistent: a
    thread still holding the old window only ever adds old-window counters to the old
    cache.
    """

    __slots__ = ("end", "llm", "start", "tool", "valid_from", "valid_until")

    def __init__(self, valid_from: float, valid_until: float, start: float, end: float | None):
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.start = start
        self.end = end
        self.llm: dict[str, tuple[Counter, ...]] = {}
        self.tool: dict[str, tuple[Counter, ...]] = {}


class _Plan:
    """A budget compiled for the hot path: matchers, scope getter, window and limits."""

    __slots__ = (
        "action",
        "alerting",
        "budget",
        "current",
        "enforce",
        "first_alert",
        "fixed_window",
        "idle_ttl_s",
        "limits",
        "llm_units",
        "matchers",
        "name",
        "scope_key_of",
        "spec",
        "warn_at",
    )

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.name = budget.name
        self.action = budget.action
        self.enforce = budget.action == "raise"
        self.warn_at = budget.warn_at
        # observe budgets never alert; others check thresholds only past the lowest one.
        self.alerting = budget.action != "observe"
        self.first_alert = budget.warn_at[0] if budget.warn_at else 1.0
        self.scope_key_of = _scope_getter(budget.scope)
        self.idle_ttl_s = RUN_IDLE_TTL_S if budget.scope == "run" else IDLE_TTL_S
        self.matchers: tuple[tuple[_Getter, re.Pattern[str]], ...] = tuple(
            (_scope_getter(key), re.compile(translate(pattern)))
            for key, pattern in budget.match.items()
            if pattern != "*"
        )
        self.spec: WindowSpec = parse_window(budget.window, budget.timezone)
        limits: dict[str, int] = {}
        if budget.limit_usd is not None:
            limits["usd"] = round(budget.limit_usd * MICROS_PER_USD)
        if budget.limit_tokens is not None:
            limits["tokens"] = budget.limit_tokens
        if budget.max_llm_calls is not None:
            limits["llm_calls"] = budget.max_llm_calls
        if budget.max_tool_calls is not None:
            limits["tool_calls"] = budget.max_tool_calls
        self.limits = limits
        self.llm_units = tuple(u for u in limits if u in ("usd", "tokens", "llm_calls"))
        # none and rolling windows have one counter for ever (rolling ones forget spend
        # bucket by bucket); calendar windows are recomputed when the clock leaves them.
        self.fixed_window = self.spec.kind in ("none", "rolling")
        self.current = (
            _Window(-math.inf, math.inf, 0.0, None)
            if self.fixed_window
            else _Window(math.inf, -math.inf, 0.0, None)
        )

    def matches(self, scope: CallScope) -> bool:
        for getter, pattern in self.matchers:
            value = getter(scope)
            if value is None or pattern.fullmatch(value) is None:
                return False
        return True

    def window(self, now_s: float) -> _Window:
        """The window at ``now_s`` (the cached one while the clock stays inside it)."""
        current = self.current
        if current.valid_from <= now_s < current.valid_until:
            return current
        start, end = window_bounds(self.spec, now_s)
        current = _Window(start, math.inf if end is None else end, start, end)
        self.current = current
        return current

    def counter(self, window: _Window, unit: str, scope_key: str) -> Counter:
        spec = self.spec
        return Counter(
            budget=self.name,
            unit=unit,
            scope_key=scope_key,
            window_start=window.start,
            window_end=window.end,
            rolling_s=spec.rolling_s,
            bucket_s=spec.bucket_s,
            limit=self.limits[unit],
            enforce=self.enforce,
            idle_ttl_s=self.idle_ttl_s,
        )

    def llm_counters(self, scope_key: str, now_s: float) -> tuple[Counter, ...]:
        """This budget's USD, token and LLM-call counters for a scope key, now."""
        window = self.window(now_s)
        counters = window.llm.get(scope_key)
        if counters is None:
            if len(window.llm) >= _CACHE_LIMIT:
                window.llm.clear()
            counters = tuple(self.counter(window, unit, scope_key) for unit in self.llm_units)
            window.llm[scope_key] = counters
        return counters

    def tool_counters(self, scope_key: str, now_s: float) -> tuple[Counter, ...]:
        """This budget's tool-call counter for a scope key, now."""
        window = self.window(now_s)
        counters = window.tool.get(scope_key)
        if counters is None:
            if len(window.tool) >= _CACHE_LIMIT:
                window.tool.clear()
            counters = (self.counter(window, "tool_calls", scope_key),)
            window.tool[scope_key] = counters
        return counters


def _display(unit: str, amount: float) -> float:
    """A counter amount at the edge: USD for money, counts otherwise."""
    return amount / MICROS_PER_USD if unit == "usd" else float(amount)


class BudgetEnforcer:
    """Admits, settles and releases calls against a set of budgets.

    Args:
        config: the budgets, alert sinks (delivered by the caller's ``on_alert``) and
            ledger settings.
        ledger: the ledger; by default opened from ``config.ledger``.
        clock: Unix seconds now; tests pass a fake clock.
        on_alert: receives each alert event (once per threshold, window and scope key).
        metrics: the budget gauges and counters; None records nothing.
        reservation_ttl_s: how long a reservation holds budget if it is never settled or
            released (a crashed process).

    Raises:
        ConfigError: the ledger URL is invalid.
        LedgerError: the ledger cannot be opened.
    """

    def __init__(
        self,
        config: BudgetConfig,
        *,
        ledger: LedgerBackend | None = None,
        clock: Callable[[], float] = time.time,
        on_alert: Callable[[BudgetAlertEvent], None] | None = None,
        metrics: BudgetMetrics | None = None,
        reservation_ttl_s: float = 600.0,
    ) -> None:
        self.config = config
        self._owns_ledger = ledger is None
        self.ledger: LedgerBackend = ledger if ledger is not None else open_ledger(config.ledger)
        self._clock = clock
        self._on_alert = on_alert
        self._metrics = metrics
        self._reservation_ttl_s = reservation_ttl_s
        self._deny_on_ledger_error = config.on_ledger_error == "deny"
        self._plans = tuple(_Plan(b) for b in config.budgets)
        self._by_name = {plan.name: plan for plan in self._plans}
        # Decisions matter for metrics and for warn budgets; skip the pass otherwise.
        self._decisions_needed = metrics is not None or any(
            plan.action == "warn" for plan in self._plans
        )
        self._alerts_known: set[tuple[str, float, str]] = set()
        self._max_ratio: dict[str, tuple[float, float]] = {}
        self._llm_plans = tuple(
            plan for plan in self._plans if {"usd", "tokens", "llm_calls"} & plan.limits.keys()
        )
        self._tool_plans = tuple(plan for plan in self._plans if "tool_calls" in plan.limits)
        if metrics is not None:
            for plan in self._plans:
                for unit, limit in plan.limits.items():
                    self._metric("set_budget_limit", plan.name, unit, _display(unit, limit))

    # ----------------------------------------------------------------- public API

    def admit_llm_call(
        self, scope: CallScope, *, worst_case_usd: float | None, worst_case_tokens: int
    ) -> Admission:
        """Reserve an LLM call's worst case on every matching budget, all or nothing.

        Args:
            scope: who is calling.
            worst_case_usd: the most the call can cost (input estimate plus ``max_tokens``
                at the output price), or None when the model has no price; USD budgets
                then reserve nothing but still refuse once exhausted.
            worst_case_tokens: the most tokens the call can use.

        Returns:
            The admission to pass to :meth:`settle` or :meth:`release`.

        Raises:
            BudgetExceeded: a ``raise`` budget would go over its limit (or the ledger is
                unreachable and ``on_ledger_error = "deny"``).
        """
        try:
            now = self._clock()
            # Negative figures are nonsense from the caller; they must not mint budget.
            usd = 0 if worst_case_usd is None else round(worst_case_usd * MICROS_PER_USD)
            if usd < 0:
                usd = 0
            if worst_case_tokens < 0:
                worst_case_tokens = 0
            amounts: list[tuple[Counter, int]] = []
            for plan in self._llm_plans:
                if plan.matchers and not plan.matches(scope):
                    continue
                key = plan.scope_key_of(scope)
                if key is None:
                    continue
                for counter in plan.llm_counters(key, now):
                    unit = counter.unit
                    if unit == "usd":
                        amounts.append((counter, usd))
                    elif unit == "tokens":
                        amounts.append((counter, worst_case_tokens))
                    else:
                        amounts.append((counter, 1))
            return self._admit(scope, amounts, now)
        except BudgetExceeded:
            raise
        except Exception:
            self._internal_error("budget", "admitting an LLM call failed; admitting it unchecked")
            return Admission(scope, "", [], ledger_failed=True)

    def admit_tool_call(self, scope: CallScope) -> Admission:
        """Count a tool call against ``max_tool_calls`` run budgets.

        Raises:
            BudgetExceeded: the run has used up its tool calls.
        """
        try:
            now = self._clock()
            amounts: list[tuple[Counter, int]] = []
            for plan in self._tool_plans:
                if plan.matchers and not plan.matches(scope):
                    continue
                key = plan.scope_key_of(scope)
                if key is not None:
                    amounts.extend((counter, 1) for counter in plan.tool_counters(key, now))
            return self._admit(scope, amounts, now)
        except BudgetExceeded:
            raise
        except Exception:
            self._internal_error("budget", "admitting a tool call failed; admitting it unchecked")
            return Admission(scope, "", [], ledger_failed=True)

    def settle(
        self,
        admission: Admission,
        *,
        cost_usd: float | None,
        tokens: int,
        idempotency_key: str | None,
    ) -> None:
        """Turn a reservation into the actual usage, then send any alerts it crossed.

        Args:
            admission: from ``admit_llm_call`` or ``admit_tool_call``.
            cost_usd: the actual cost, or None when it is unknown: USD counters then keep
                the reserved worst case, so an unpriced call never counts as free.
            tokens: the actual tokens (all kinds, input and output).
            idempotency_key: the provider's response id; usage settled twice under one key
                counts once.
        """
        if admission._done:
            return
        admission._done = True
        if not admission.amounts:
            return
        try:
            usd = None if cost_usd is None else round(cost_usd * MICROS_PER_USD)
            if usd is not None and usd < 0:
                usd = 0
            if tokens < 0:
                tokens = 0
            actual: list[tuple[Counter, int]] = []
            for counter, reserved in admission.amounts:
                unit = counter.unit
                if unit == "usd":
                    actual.append((counter, reserved if usd is None else usd))
                elif unit == "tokens":
                    actual.append((counter, tokens))
                else:  # llm_calls / tool_calls: the call happened
                    actual.append((counter, 1))
            self._commit(admission.scope, admission.reservation_id, actual, idempotency_key)
        except Exception:
            self._internal_error("budget", "settling a call failed")

    def release(self, admission: Admission) -> None:
        """Drop a reservation without charging it (the call failed or was cancelled)."""
        if admission._done:
            return
        admission._done = True
        if not admission.amounts:
            return
        try:
            counters = [counter for counter, _ in admission.amounts]
            self.ledger.release(admission.reservation_id, counters, now_s=self._clock())
        except LedgerError:
            self._internal_error("budget_ledger", "releasing a reservation failed")
        except Exception:
            self._internal_error("budget", "releasing a reservation failed")

    def charge(
        self,
        scope: CallScope,
        *,
        cost_usd: float | None,
        tokens: int,
        idempotency_key: str | None,
    ) -> None:
        """Count an LLM call that was never admitted (e.g. a span from another library).

        Nothing is refused; the usage is added to every matching budget and alerts are
        sent as after :meth:`settle`.
        """
        try:
            now = self._clock()
            usd = None if cost_usd is None else round(cost_usd * MICROS_PER_USD)
            if usd is not None and usd < 0:
                usd = 0
            if tokens < 0:
                tokens = 0
            amounts: list[tuple[Counter, int]] = []
            for plan in self._llm_plans:
                if plan.matchers and not plan.matches(scope):
                    continue
                key = plan.scope_key_of(scope)
                if key is None:
                    continue
                for counter in plan.llm_counters(key, now):
                    unit = counter.unit
                    if unit == "usd":
                        if usd is not None:
                            amounts.append((counter, usd))
                    elif unit == "tokens":
                        amounts.append((counter, tokens))
                    else:
                        amounts.append((counter, 1))
            if amounts:
                self._commit(scope, None, amounts, idempotency_key)
        except Exception:
            self._internal_error("budget", "charging unadmitted usage failed")

    def status(self) -> list[BudgetStatus]:
        """Every budget's figures per live scope key and unit in the current window.

        Also sets the budget gauges: USD spent and reserved per scope key for ``global``,
        ``model`` and ``provider`` budgets (for other scopes, whose keys are many, the total
        over live keys without a scope key), the highest utilisation among scope keys for
        every budget, and the window end of calendar budgets.
        """
        now = self._clock()
        try:
            live = self.ledger.live_counters(now_s=now)
        except LedgerError:
            self._internal_error("budget_ledger", "reading budget status failed")
            live = []
        by_budget: dict[str, list[CounterStatus]] = {}
        for status in live:
            by_budget.setdefault(status.counter.budget, []).append(status)
        out: list[BudgetStatus] = []
        for plan in self._plans:
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
            if self._metrics is not None:
                self._status_metrics(plan, rows, start, end)
        return out

    def close(self) -> None:
        """Close the ledger if this enforcer opened it; idempotent."""
        if self._owns_ledger:
            self.ledger.close()

    # ----------------------------------------------------------------- internals

    def _admit(self, scope: CallScope, amounts: list[tuple[Counter, int]], now: float) -> Admission:
        if not amounts:
            return Admission(scope, "", amounts)
        ids = _reservation_ids
        reservation_id = f"{ids.tag}-{next(ids.numbers)}"
        try:
            outcome = self.ledger.reserve(
                reservation_id, amounts, now_s=now, expires_at_s=now + self._reservation_ttl_s
            )
        except LedgerError as exc:
            return self._ledger_down(scope, reservation_id, amounts, exc)
        if not outcome.admitted:
            counter, amount = amounts[outcome.refused]
            spent, reserved = outcome.usage[outcome.refused]
            self._metric("record_budget_decision", counter.budget, "denied")
            self._alert(scope, counter, kind="exceeded", threshold=_EXCEEDED, spent=spent, now=now)
            raise BudgetExceeded(
                counter.budget,
                scope_key=counter.scope_key,
                limit=_display(counter.unit, counter.limit),
                spent=_display(counter.unit, spent),
                reserved=_display(counter.unit, reserved),
                requested=_display(counter.unit, amount),
                window_end=counter.window_end,
                unit=counter.unit,
            )
        if self._decisions_needed:
            self._decide(scope, amounts, outcome.usage, now)
        return Admission(scope, reservation_id, amounts)

    def _decide(
        self,
        scope: CallScope,
        amounts: list[tuple[Counter, int]],
        usage: tuple[tuple[int, int], ...],
        now: float,
    ) -> None:
        """Record one decision per budget; ``warn`` budgets that would exceed alert."""
        decisions: dict[str, str] = {}
        for (counter, amount), (spent, reserved) in zip(amounts, usage, strict=True):
            decision = "allowed"
            plan = self._by_name[counter.budget]
            if plan.action == "warn" and spent + reserved + amount > counter.limit:
                decision = "warned"
                self._alert(
                    scope, counter, kind="exceeded", threshold=_EXCEEDED, spent=spent, now=now
                )
            if decisions.get(counter.budget) != "warned":
                decisions[counter.budget] = decision
        for budget, decision in decisions.items():
            self._metric("record_budget_decision", budget, decision)

    def _ledger_down(
        self,
        scope: CallScope,
        reservation_id: str,
        amounts: list[tuple[Counter, int]],
        exc: LedgerError,
    ) -> Admission:
        enforced = [(c, a) for c, a in amounts if c.enforce]
        if self._deny_on_ledger_error and enforced:
            self._internal_error("budget_ledger", "budget ledger unavailable; refusing the call")
            counter, amount = enforced[0]
            self._metric("record_budget_decision", counter.budget, "denied")
            raise BudgetExceeded(
                counter.budget,
                scope_key=counter.scope_key,
                limit=_display(counter.unit, counter.limit),
                spent=math.nan,
                reserved=math.nan,
                requested=_display(counter.unit, amount),
                window_end=counter.window_end,
                unit=counter.unit,
            ) from exc
        self._internal_error("budget_ledger", "budget ledger unavailable; admitting the call")
        return Admission(scope, reservation_id, amounts, ledger_failed=True)

    def _commit(
        self,
        scope: CallScope,
        reservation_id: str | None,
        actual: Sequence[tuple[Counter, int]],
        idempotency_key: str | None,
    ) -> None:
        now = self._clock()
        try:
            after = self.ledger.commit(
                reservation_id, actual, now_s=now, idempotency_key=idempotency_key
            )
        except LedgerError:
            self._internal_error("budget_ledger", "recording usage in the budget ledger failed")
            return
        metrics = self._metrics
        for (counter, _), (spent, reserved) in zip(actual, after, strict=True):
            limit = counter.limit
            plan = self._by_name[counter.budget]
            if plan.alerting and spent >= plan.first_alert * limit:
                for threshold in plan.warn_at:
                    if spent >= threshold * limit:
                        self._alert(
                            scope,
                            counter,
                            kind="warning",
                            threshold=threshold,
                            spent=spent,
                            now=now,
                        )
                if spent >= limit:
                    self._alert(
                        scope, counter, kind="exceeded", threshold=_EXCEEDED, spent=spent, now=now
                    )
            if metrics is not None:
                self._usage_metrics(plan, counter, spent, reserved)

    def _alert(
        self,
        scope: CallScope,
        counter: Counter,
        *,
        kind: str,
        threshold: float,
        spent: int,
        now: float,
    ) -> None:
        """Send one alert per (counter, threshold, kind), agreed with the ledger."""
        if self._by_name[counter.budget].action == "observe":
            return
        known = (counter.key, threshold, kind)
        if known in self._alerts_known:
            return
        try:
            first = self.ledger.mark_alert_sent(counter, threshold=threshold, kind=kind, now_s=now)
        except LedgerError:
            self._internal_error("budget_ledger", "recording a budget alert failed")
            return
        if len(self._alerts_known) >= _CACHE_LIMIT:
            self._alerts_known.clear()
        self._alerts_known.add(known)
        if not first:
            return
        unit = counter.unit
        is_usd = unit == "usd"
        event = BudgetAlertEvent(
            session_id=scope.session_id,
            run_id=scope.run_id,
            timestamp_ns=int(now * 1e9),
            budget=counter.budget,
            scope_key=counter.scope_key,
            kind=kind,
            threshold=threshold,
            unit=unit,
            spent=_display(unit, spent),
            limit=_display(unit, counter.limit),
            spent_usd=_display(unit, spent) if is_usd else None,
            limit_usd=_display(unit, counter.limit) if is_usd else None,
            window_end=counter.window_end,
        )
        logger.debug(
            "budget %r (%s): %s alert at %g of the limit: spent %g of %g %s",
            counter.budget,
            counter.scope_key,
            kind,
            threshold,
            event.spent,
            event.limit,
            unit,
        )
        self._metric("record_budget_alert", counter.budget, kind, f"{threshold:g}")
        if self._on_alert is not None:
            try:
                self._on_alert(event)
            except Exception:
                self._internal_error("budget_alert", "a budget alert handler raised")

    def _usage_metrics(self, plan: _Plan, counter: Counter, spent: int, reserved: int) -> None:
        if counter.unit == "usd" and plan.budget.scope in _LOW_CARDINALITY_SCOPES:
            self._metric(
                "set_budget_usage",
                plan.name,
                counter.scope_key,
                _display("usd", spent),
                _display("usd", reserved),
            )
        ratio = spent / counter.limit
        window_start, best = self._max_ratio.get(plan.name, (counter.window_start, 0.0))
        if window_start != counter.window_start:
            best = 0.0  # a new window starts from zero
        if ratio > best or window_start != counter.window_start:
            self._max_ratio[plan.name] = (counter.window_start, max(ratio, best))
            self._metric("set_budget_max_utilization", plan.name, max(ratio, best))

    def _status_metrics(
        self, plan: _Plan, rows: list[CounterStatus], start: float, end: float | None
    ) -> None:
        best = 0.0
        few_keys = plan.budget.scope in _LOW_CARDINALITY_SCOPES
        total_spent = total_reserved = 0
        for row in rows:
            best = max(best, row.spent / row.counter.limit)
            if row.counter.unit != "usd":
                continue
            total_spent += row.spent
            total_reserved += row.reserved
            if few_keys:
                self._metric(
                    "set_budget_usage",
                    plan.name,
                    row.counter.scope_key,
                    _display("usd", row.spent),
                    _display("usd", row.reserved),
                )
        if not few_keys and "usd" in plan.limits:
            # Too many keys to label: the budget's total over its live keys, unlabelled.
            self._metric(
                "set_budget_usage",
                plan.name,
                None,
                _display("usd", total_spent),
                _display("usd", total_reserved),
            )
        self._max_ratio[plan.name] = (start, best)
        self._metric("set_budget_max_utilization", plan.name, best)
        if end is not None:
            self._metric("set_budget_window_end", plan.name, end)

    def _metric(self, method: str, *args: object) -> None:
        # Metrics are best effort: a broken exporter must not break admission.
        metrics = self._metrics
        if metrics is None:
            return
        try:
            getattr(metrics, method)(*args)
        except Exception:
            logger.warning("budget metric %s failed", method, exc_info=True)

    def _internal_error(self, component: str, message: str) -> None:
        logger.error("%s", message, exc_info=True)
        if self._metrics is not None:
            try:
                self._metrics.record_internal_error(component)
            except Exception:
                logger.warning("recording an internal error failed", exc_info=True)
