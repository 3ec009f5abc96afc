"""The budget gate: where the instrumentation API meets the budget enforcer.

It takes plain values: an ``LLMRequest`` is admitted on entry to a call (the worst case:
the input estimate plus ``max_tokens`` at the model's prices) and settled or released on
exit; a tool call's ``CallScope`` is counted against run limits. Alerts go to the extension
handlers (as ``budget_alert`` events) and to the configured alert sinks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..errors import ConfigError
from ..events import BudgetAlertEvent, LLMUsageEvent
from ..tokens import TokenUsage
from ..validation import is_count
from .alerts import AlertDispatcher, build_sinks
from .calls import Admission, CallScope, LLMRequest
from .config import Budget, BudgetConfig, load_budget_config
from .enforcer import BudgetEnforcer, BudgetStatus

if TYPE_CHECKING:
    from ..metrics import KitMetrics
    from ..pricing import ModelPrice

BudgetsOption = str | os.PathLike[str] | Sequence[Budget] | BudgetConfig

logger = logging.getLogger("kit_telemetry")


def _count(value: object) -> int | None:
    """A token count from a request, or None when it is none (the handle reported it)."""
    return value if is_count(value) else None


def budget_config(option: BudgetsOption) -> BudgetConfig:
    """A ``BudgetConfig`` from ``configure(budgets=...)``: a TOML path, budgets or a config.

    Raises:
        ConfigError: the file is invalid, or the option is none of the accepted forms.
    """
    if isinstance(option, BudgetConfig):
        return option
    if isinstance(option, (str, os.PathLike)):
        return load_budget_config(option)
    budgets = tuple(option)
    for budget in budgets:
        if not isinstance(budget, Budget):
            raise ConfigError(
                f"budgets must be a TOML path, a list of kt.Budget or a BudgetConfig; "
                f"the list holds {budget!r}"
            )
    names = [b.name for b in budgets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"budgets: duplicate budget name(s) {duplicates}; names must be unique")
    return BudgetConfig(budgets=budgets)


def call_fingerprint(tool: str, arguments: object) -> str:
    """A short name for a tool and its arguments: equal for identical calls.

    Arguments are hashed as JSON with sorted keys, so ``{"a": 1, "b": 2}`` and
    ``{"b": 2, "a": 1}`` are the same call; what JSON cannot hold counts by its ``repr``.
    """
    text = json.dumps([tool, arguments], sort_keys=True, default=repr, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


class PriceLookup(Protocol):
    """Finds a model's price (``pricing.PriceTable`` is one)."""

    def find_price(self, provider: str, model: str) -> ModelPrice | None: ...


class BudgetGate:
    """Admission and settlement of calls, for one ``Telemetry``.

    Args:
        config: the budgets and alert sinks.
        prices: prices the worst case of a call at admission.
        metrics: budget gauges and counters, and internal errors (None: not recorded).
        emit: delivers budget alerts to the extension handlers.
    """

    def __init__(
        self,
        config: BudgetConfig,
        *,
        prices: PriceLookup,
        metrics: KitMetrics | None = None,
        emit: Callable[[BudgetAlertEvent], None] | None = None,
    ) -> None:
        self.config = config
        self._prices = prices
        self._metrics = metrics
        self._emit = emit
        sinks = build_sinks(config.alerts, on_error=self._alert_failed)
        self._alerts = AlertDispatcher(sinks, on_error=self._alert_failed)
        self.enforcer = BudgetEnforcer(config, on_alert=self._on_alert, metrics=metrics)

    # --- LLM calls ------------------------------------------------------------------
    def admit_llm_call(self, request: LLMRequest) -> Admission:
        """Reserve the call's worst case on every matching budget, or raise ``BudgetExceeded``.

        The worst case is the input estimate plus ``max_tokens``, at the model's prices.
        A count not given (or not a non-negative int) is replaced by a conservative one:
        ``default_max_tokens`` for the output, and for the input the run's largest input
        so far or, in a run without one, ``default_input_estimate``. So concurrent calls
        without sizes reserve what they may spend, and a ``raise`` budget admits no more
        of them at once than it would one after another. A model whose worst case cannot
        be priced reserves no money but is refused once a budget is exhausted.
        """
        scope = request.scope
        config = self.config
        estimate = _count(request.estimated_input_tokens)
        if estimate is None:
            # The run's history is the better guess; a first call has none.
            estimate = _count(request.largest_input_tokens) or config.default_input_estimate
        max_tokens = _count(request.max_tokens)
        if max_tokens is None:
            max_tokens = config.default_max_tokens
        worst_usd: float | None = None
        if request.subscription:
            worst_usd = 0.0
        else:
            try:
                price = self._prices.find_price(scope.provider, scope.model)
                if price is not None:
                    worst_usd = price.cost_usd(
                        TokenUsage(input_tokens=estimate, output_tokens=max_tokens)
                    )
            except Exception:
                logger.error(
                    "pricing a call's worst case failed; reserving no money", exc_info=True
                )
                if self._metrics is not None:
                    self._metrics.record_internal_error("budget")
        enforcer = self.enforcer
        call_key = None
        if enforcer.guards_repeats and request.content is not None:
            call_key = self._fingerprint(f"llm:{scope.provider}/{scope.model}", request.content)
        return enforcer.admit_llm_call(
            scope,
            worst_case_usd=worst_usd,
            worst_case_tokens=estimate + max_tokens,
            call_key=call_key,
        )

    def settle_llm_call(
        self,
        admission: Admission,
        *,
        usage: TokenUsage | None,
        cost_usd: float | None,
        response_id: str | None,
    ) -> None:
        """Settle the reservation to the actual usage (``usage`` None: nothing reported)."""
        self.enforcer.settle(
            admission,
            cost_usd=cost_usd if usage is not None else None,
            tokens=0 if usage is None else usage.total,
            idempotency_key=response_id,
        )

    def charge_llm_call(self, event: LLMUsageEvent, agent: str) -> None:
        """Count a call no budget admitted (a span of other code) on every matching budget.

        Nothing is refused: the call has been made. The next admission, or a framework
        hook reading ``status()``, sees the spend.
        """
        scope = CallScope(
            session_id=event.session_id,
            run_id=event.run_id or "",
            provider=event.provider,
            model=event.model,
            agent=agent,
        )
        self.enforcer.charge(
            scope,
            cost_usd=event.cost_usd,
            tokens=event.tokens.total,
            idempotency_key=event.response_id,
        )

    def release(self, admission: Admission) -> None:
        """Drop a reservation without charging it: the call failed before any usage."""
        self.enforcer.release(admission)

    def abandon(self, admission: Admission) -> None:
        """A call ended with an exception and no usage: follow ``on_cancel``.

        ``release`` drops the reservation; ``charge_reservation`` charges it in full.
        """
        if self.config.on_cancel == "charge_reservation":
            self.enforcer.charge_reservation(admission)
        else:
            self.enforcer.release(admission)

    # --- tool calls -----------------------------------------------------------------
    def admit_tool_call(
        self, scope: CallScope, *, tool: str = "", arguments: object = None
    ) -> Admission:
        """Count a tool call against run limits, or raise ``BudgetExceeded``.

        ``tool`` and ``arguments`` identify the call for ``max_repeats`` loop guards: two
        calls are the same when the tool's name and its arguments (as canonical JSON) are.
        """
        enforcer = self.enforcer
        call_key = self._fingerprint(tool, arguments) if enforcer.guards_repeats else None
        return enforcer.admit_tool_call(scope, call_key=call_key)

    def _fingerprint(self, tool: str, arguments: object) -> str | None:
        """The call's fingerprint, or None (the loop guard skips it) when it has none."""
        try:
            return call_fingerprint(tool, arguments)
        except Exception:  # e.g. a circular structure: never an error in the agent
            logger.error("fingerprinting a call for max_repeats failed", exc_info=True)
            if self._metrics is not None:
                self._metrics.record_internal_error("budget")
            return None

    def charge_tool_cost(self, scope: CallScope, cost_usd: float) -> None:
        """Count a tool call's own cost against the USD budgets it matches."""
        self.enforcer.charge_usd(scope, cost_usd=cost_usd)

    def settle_tool_call(self, admission: Admission) -> None:
        """A tool call counts whether it succeeded or failed."""
        self.enforcer.settle(admission, cost_usd=None, tokens=0, idempotency_key=None)

    # --- status and lifecycle ----------------------------------------------------------
    def status(self) -> list[BudgetStatus]:
        """Every budget and live scope key."""
        return self.enforcer.status()

    def flush(self, timeout_s: float) -> bool:
        """Wait for alert deliveries in flight."""
        return self._alerts.flush(timeout_s)

    def close(self) -> None:
        """Deliver what is pending (bounded) and close the sinks and the ledger."""
        self._alerts.close()
        self.enforcer.close()

    def _on_alert(self, event: BudgetAlertEvent) -> None:
        if self._emit is not None:
            self._emit(event)
        self._alerts.dispatch(event)

    def _alert_failed(self, event: BudgetAlertEvent, exc: BaseException) -> None:
        if self._metrics is not None:
            self._metrics.record_internal_error("budget_alerts")
