"""What the aggregator talks to: the pricer, the metrics, the event sink, and which
events are optional."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from opentelemetry.sdk.trace import ReadableSpan

from ..events import AgentEndEvent, Event, EventType, LLMUsageEvent, ToolResultEvent
from ..tokens import TokenUsage


class Pricer(Protocol):
    """Prices one call; ``None`` when the model is unknown (``pricing.PriceTable`` is one)."""

    def cost_usd(
        self,
        provider: str,
        model: str,
        usage: TokenUsage,
        *,
        subscription: bool = False,
    ) -> float | None: ...


EventSink = Callable[[Sequence[Event], ReadableSpan], None]

# Receives each LLM call of other code (no budget admitted it) with its run's agent name,
# so budgets count what frameworks and provider instrumentations spend.
SpendSink = Callable[[LLMUsageEvent, str], None]

# Events nothing but handlers need: built only when some handler wants them.
OPTIONAL_EVENTS = (
    EventType.SESSION_START,
    EventType.AGENT_START,
    EventType.USER_INPUT,
    EventType.TURN_START,
    EventType.TURN_END,
    EventType.TOOL_CALL,
)


class UsageMetrics(Protocol):
    """Where the aggregator reports each finished call and run (``metrics.KitMetrics``)."""

    def record_llm_call(
        self,
        event: LLMUsageEvent,
        *,
        outcome: str = "ok",
        error_type: str = "",
        operation: str = "chat",
    ) -> None: ...

    def record_tool_call(
        self, event: ToolResultEvent, *, tool_type: str = "", error_type: str = ""
    ) -> None: ...

    def record_run(
        self, event: AgentEndEvent, *, provider: str = "", error_type: str = ""
    ) -> None: ...
