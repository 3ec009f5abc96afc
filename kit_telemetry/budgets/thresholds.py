"""Threshold alerts: a budget's usage crossing a ``warn_at`` fraction or its limit.

Kinds follow what happened: a ``warning`` when settled spend crosses a ``warn_at``
fraction, an ``exceeded`` alert when settled spend reaches the limit or when a ``raise``
budget refuses a call because ``spent + reserved + requested > limit`` (the event then
carries ``requested`` and ``reserved``). A refusal first sends any warning its spend has
earned, so warnings always come before the ``exceeded`` alert.

Each crossing becomes one :class:`~kit_telemetry.events.BudgetAlertEvent` per threshold,
window and scope key, also across processes and restarts: the ledger records which alerts
went out. The enforcer decides when usage is checked; delivery to sinks is ``alerts``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from ..events import BudgetAlertEvent
from .calls import CallScope
from .ledger import Counter, LedgerBackend, LedgerError
from .plans import _CACHE_LIMIT, _Plan
from .status import _EXCEEDED, _BudgetReporter, _display

logger = logging.getLogger("kit_telemetry")


class _ThresholdAlerts:
    """Sends each budget alert once per (counter, threshold, kind), agreed with the ledger.

    Args:
        plans: the compiled budgets by name.
        on_alert: receives each alert event; None only counts and logs it.
        report: where alerts are counted and internal errors reported.
    """

    __slots__ = ("_known", "_on_alert", "_plans", "_report")

    def __init__(
        self,
        plans: Mapping[str, _Plan],
        on_alert: Callable[[BudgetAlertEvent], None] | None,
        report: _BudgetReporter,
    ) -> None:
        self._plans = plans
        self._on_alert = on_alert
        self._report = report
        self._known: set[tuple[str, float, str]] = set()

    def crossed(
        self,
        ledger: LedgerBackend,
        scope: CallScope,
        plan: _Plan,
        counter: Counter,
        *,
        spent: int,
        now: float,
    ) -> None:
        """Alert on every ``warn_at`` threshold and on the limit that ``spent`` has reached."""
        self._warnings(ledger, scope, plan, counter, spent=spent, now=now)
        if spent >= counter.limit:
            self.send(
                ledger, scope, counter, kind="exceeded", threshold=_EXCEEDED, spent=spent, now=now
            )

    def refused(
        self,
        ledger: LedgerBackend,
        scope: CallScope,
        counter: Counter,
        *,
        spent: int,
        reserved: int,
        requested: int,
        now: float,
    ) -> None:
        """Alert that a call was refused: ``spent + reserved + requested`` would pass the limit.

        Warnings that ``spent`` has earned but not yet sent (usage from another process,
        or from before a restart) go out first, so the order stays warnings, then
        ``exceeded``.
        """
        plan = self._plans[counter.budget]
        self._warnings(ledger, scope, plan, counter, spent=spent, now=now)
        self.send(
            ledger,
            scope,
            counter,
            kind="exceeded",
            threshold=_EXCEEDED,
            spent=spent,
            now=now,
            refusal=(reserved, requested),
        )

    def _warnings(
        self,
        ledger: LedgerBackend,
        scope: CallScope,
        plan: _Plan,
        counter: Counter,
        *,
        spent: int,
        now: float,
    ) -> None:
        limit = counter.limit
        for threshold in plan.warn_at:
            if spent >= threshold * limit:
                self.send(
                    ledger,
                    scope,
                    counter,
                    kind="warning",
                    threshold=threshold,
                    spent=spent,
                    now=now,
                )

    def send(
        self,
        ledger: LedgerBackend,
        scope: CallScope,
        counter: Counter,
        *,
        kind: str,
        threshold: float,
        spent: int,
        now: float,
        refusal: tuple[int, int] | None = None,
    ) -> None:
        """Send one alert per (counter, threshold, kind), agreed with the ledger.

        ``refusal`` is ``(reserved, requested)`` of a refused call, None otherwise.
        """
        if self._plans[counter.budget].action == "observe":
            return
        known = (counter.key, threshold, kind)
        if known in self._known:
            return
        try:
            first = ledger.mark_alert_sent(counter, threshold=threshold, kind=kind, now_s=now)
        except LedgerError:
            self._report.internal_error("budget_ledger", "recording a budget alert failed")
            return
        if len(self._known) >= _CACHE_LIMIT:
            self._known.clear()
        self._known.add(known)
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
            reserved=None if refusal is None else _display(unit, refusal[0]),
            requested=None if refusal is None else _display(unit, refusal[1]),
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
        self._report.metric("record_budget_alert", counter.budget, kind, f"{threshold:g}")
        if self._on_alert is not None:
            try:
                self._on_alert(event)
            except Exception:
                self._report.internal_error("budget_alert", "a budget alert handler raised")
