"""The budget gate: where the instrumentation API meets the budget enforcer.

``LLMCall`` asks the gate to admit it on entry (the worst case: the input estimate plus
``max_tokens`` at the model's output price) and to settle or release it on exit;
``ToolCall`` asks it to count tool calls against run limits. Alerts go to the extension
handlers (as ``budget_alert`` events) and to the configured alert sinks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..events import BudgetAlertEvent
from .alerts import AlertDispatcher, build_sinks
from .config import Budget, BudgetConfig, load_budget_config
from .enforcer import Admission, BudgetEnforcer, BudgetStatus, CallScope

if TYPE_CHECKING:
    from ..instrumentation import LLMCall, Run, ToolCall
    from ..telemetry import Telemetry

BudgetsOption = str | os.PathLike[str] | Sequence[Budget] | BudgetConfig


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


class BudgetGate:
    """Admission and settlement for one ``Telemetry``."""

    def __init__(self, config: BudgetConfig, telemetry: Telemetry) -> None:
        self._telemetry = telemetry
        self.config = config
        sinks = build_sinks(config.alerts, on_error=self._alert_failed)
        self._alerts = AlertDispatcher(sinks, on_error=self._alert_failed)
        self.enforcer = BudgetEnforcer(config, on_alert=self._on_alert, metrics=telemetry.metrics)

    @classmethod
    def from_option(cls, option: BudgetsOption, *, telemetry: Telemetry) -> BudgetGate:
        """Build the gate from ``configure(budgets=...)``."""
        return cls(budget_config(option), telemetry)

    # --- LLM calls ------------------------------------------------------------------
    def admit_llm_call(self, call: LLMCall) -> Admission:
        """Reserve the call's worst case on every matching budget, or raise ``BudgetExceeded``."""
        run = call.turn.run
        max_tokens = call.max_tokens or 0
        estimate = call.estimated_input_tokens
        if estimate is None:
            estimate = run._max_input_tokens  # the largest input of this run's earlier calls
        worst_usd: float | None
        if run.session.subscription:
            worst_usd = 0.0
        else:
            price = self._telemetry.prices.find_price(call.provider, call.model)
            worst_usd = (
                None
                if price is None
                else price.cost_usd(input_tokens=estimate, output_tokens=max_tokens)
            )
        return self.enforcer.admit_llm_call(
            self._scope(run, call.provider, call.model),
            worst_case_usd=worst_usd,
            worst_case_tokens=estimate + max_tokens,
        )

    def finish_llm_call(self, call: LLMCall, admission: object, exc: BaseException | None) -> None:
        """Settle the reservation to the actual usage, or release it if the call failed."""
        assert isinstance(admission, Admission)
        usage = call.usage
        if usage is None and exc is not None:
            self.enforcer.release(admission)
            return
        tokens = 0 if usage is None else sum(usage[k] for k in _TOKEN_KINDS)
        self.enforcer.settle(
            admission,
            cost_usd=call.cost_usd if usage is not None else None,
            tokens=tokens,
            idempotency_key=call._response_id,
        )

    # --- tool calls -----------------------------------------------------------------
    def admit_tool_call(self, tool: ToolCall) -> Admission:
        """Count a tool call against run limits, or raise ``BudgetExceeded``."""
        run = tool.turn.run
        return self.enforcer.admit_tool_call(self._scope(run, "", ""))

    def finish_tool_call(self, admission: object) -> None:
        """A tool call counts whether it succeeded or failed."""
        assert isinstance(admission, Admission)
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

    def _scope(self, run: Run, provider: str, model: str) -> CallScope:
        session = run.session
        return CallScope(
            session_id=session.session_id,
            run_id=run.run_id,
            user=session.user,
            provider=provider,
            model=model,
            agent=run.agent_name,
            attributes=session.attributes,
        )

    def _on_alert(self, event: BudgetAlertEvent) -> None:
        self._telemetry._extensions.emit(event)
        self._alerts.dispatch(event)

    def _alert_failed(self, event: BudgetAlertEvent, exc: BaseException) -> None:
        self._telemetry.metrics.record_internal_error("budget_alerts")


_TOKEN_KINDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
