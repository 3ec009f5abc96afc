"""``Runtime``: what the instrumentation handles need from ``Telemetry``, and nothing more.

``Session``, ``Run``, ``Turn``, ``LLMCall`` and ``ToolCall`` hold one ``Runtime``: the
tracer their spans start on, the error policy, pricing, the budget gate, the session
state stores and the aggregator's totals for the spans they end. ``Telemetry`` builds it
and the handles never see ``Telemetry`` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from ._errors import ErrorPolicy
from .text import clean_content
from .tokens import TokenUsage

if TYPE_CHECKING:
    from .aggregation import UsageAggregator
    from .budgets.gate import BudgetGate
    from .pricing import PriceTable
    from .state import SessionState
    from .state.registry import StateRegistry
    from .tracing import SpanPayload


class Runtime:
    """The narrow, typed interface between the handles and the rest of kit-telemetry.

    Attributes:
        tracer: where the handles start their spans.
        errors: what happens to bad input and internal failures.
        budgets: admits and settles calls; None when no budget is configured.
        capture_content: prompts, tool arguments and results go on spans.
    """

    def __init__(
        self,
        *,
        tracer: Tracer,
        errors: ErrorPolicy,
        prices: PriceTable,
        aggregator: UsageAggregator,
        states: StateRegistry,
        budgets: BudgetGate | None = None,
        capture_content: bool = False,
        max_content_chars: int = 4096,
    ) -> None:
        self.tracer = tracer
        self.errors = errors
        self.budgets = budgets
        self.capture_content = capture_content
        self._max_content_chars = max_content_chars
        self._prices = prices
        self._aggregator = aggregator
        self._states = states

    def clip(self, text: str) -> str:
        """``text`` valid UTF-8 and cut to ``max_content_chars``, saying how much was cut."""
        return clean_content(text, max_chars=self._max_content_chars)

    def price(
        self, provider: str, model: str, usage: TokenUsage, *, subscription: bool
    ) -> float | None:
        """The call's cost in USD; None when the model has no price (or pricing failed)."""
        try:
            return self._prices.cost_usd(provider, model, usage, subscription=subscription)
        except Exception as exc:
            self.errors.failed("pricing", exc)
            return None

    # --- sessions ------------------------------------------------------------------------
    def session_started(
        self, session_id: str, session_file: str | None, *, subscription: bool
    ) -> None:
        """A session opened: its state lives beside ``session_file``."""
        self._states.session_started(session_id, session_file)
        if subscription:
            self._aggregator.mark_subscription(session_id)

    def session_ended(self, session_id: str) -> None:
        """A session closed: its state store is flushed and closed."""
        self._states.session_ended(session_id)

    def state(self, session_id: str, session_file: str | None) -> SessionState:
        """The session's key-value store (opened on first use)."""
        return self._states.state_for(session_id, session_file)

    # --- totals for the spans the handles end ----------------------------------------------
    def run_attributes(
        self, payload: SpanPayload, duration_ms: float, *, failed: bool
    ) -> dict[str, AttributeValue]:
        """The run's ``kit.run.*`` totals, to set on its span before it ends."""
        return self._aggregator.run_attributes(payload, duration_ms, failed=failed)

    def session_attributes(self, session_id: str, end_ns: int) -> dict[str, AttributeValue]:
        """The session's ``kit.session.*`` totals, to set on its end span."""
        return self._aggregator.session_attributes(session_id, end_ns)
