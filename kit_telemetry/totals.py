"""The running totals of a turn, a run and a session, as the aggregator keeps them."""

from __future__ import annotations

from typing import Any

from .events import LLMUsageEvent


class RunningTotals:
    """Mutable running totals of a turn, a run or a session."""

    __slots__ = (
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "input_tokens",
        "llm_call_count",
        "output_tokens",
        "reasoning_tokens",
        "tool_names",
        "turn_count",
        "unpriced_call_count",
    )

    def __init__(self) -> None:
        self.llm_call_count = 0
        self.tool_names: list[str] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.cost_usd = 0.0
        self.unpriced_call_count = 0
        self.turn_count = 0

    def add_call(self, call: LLMUsageEvent) -> None:
        self.llm_call_count += 1
        self.input_tokens += call.input_tokens
        self.output_tokens += call.output_tokens
        self.cache_read_tokens += call.cache_read_tokens
        self.cache_write_tokens += call.cache_write_tokens
        self.reasoning_tokens += call.reasoning_tokens
        if call.cost_usd is None:
            self.unpriced_call_count += 1
        else:
            self.cost_usd += call.cost_usd

    def fields(self, duration_ms: float) -> dict[str, Any]:
        """The totals as keyword arguments of the end events."""
        return {
            "llm_call_count": self.llm_call_count,
            "tool_call_count": len(self.tool_names),
            "tool_names": tuple(self.tool_names),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
            "unpriced_call_count": self.unpriced_call_count,
            "turn_count": self.turn_count,
            "duration_ms": duration_ms,
        }


class SessionTally:
    __slots__ = ("run_count", "started_ns", "subscription", "totals")

    def __init__(self, started_ns: int) -> None:
        self.totals = RunningTotals()
        self.run_count = 0
        self.started_ns = started_ns
        self.subscription = False


class RunTally:
    __slots__ = (
        "agent_name",
        "last_finish_reason",
        "llm_steps",
        "run_id",
        "session",
        "session_id",
        "totals",
    )

    def __init__(
        self, run_id: str, session_id: str, agent_name: str, session: SessionTally
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.agent_name = agent_name
        self.session = session
        self.totals = RunningTotals()
        self.llm_steps = 0
        self.last_finish_reason: str | None = None
