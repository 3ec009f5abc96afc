"""The running totals of a turn, a run and a session, as the aggregator keeps them."""

from __future__ import annotations

from typing import Any

from .tokens import TokenUsage


class RunningTotals:
    """Mutable running totals of a turn, a run or a session."""

    __slots__ = (
        "cost_usd",
        "llm_call_count",
        "tokens",
        "tool_names",
        "turn_count",
        "unpriced_call_count",
    )

    def __init__(self) -> None:
        self.llm_call_count = 0
        self.tool_names: list[str] = []
        self.tokens = TokenUsage()
        self.cost_usd = 0.0
        self.unpriced_call_count = 0
        self.turn_count = 0

    def add_call(self, tokens: TokenUsage, cost_usd: float | None) -> None:
        """Count one LLM call (``cost_usd`` None: unpriced, left out of the cost)."""
        self.llm_call_count += 1
        self.tokens += tokens
        if cost_usd is None:
            self.unpriced_call_count += 1
        else:
            self.cost_usd += cost_usd

    def add_cost(self, cost_usd: float) -> None:
        """Count money spent outside an LLM call (a tool call's own cost)."""
        self.cost_usd += cost_usd

    def fields(self, duration_ms: float) -> dict[str, Any]:
        """The totals as keyword arguments of the end events."""
        return {
            "llm_call_count": self.llm_call_count,
            "tool_call_count": len(self.tool_names),
            "tool_names": tuple(self.tool_names),
            **self.tokens.as_fields(),
            "cost_usd": self.cost_usd,
            "unpriced_call_count": self.unpriced_call_count,
            "cost_complete": self.unpriced_call_count == 0,
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
    """A run's totals; a sub-agent run's calls count in its ancestors' totals too."""

    __slots__ = (
        "agent_name",
        "last_finish_reason",
        "llm_steps",
        "parent",
        "run_id",
        "session",
        "session_id",
        "subagent_count",
        "tool_call_id",
        "totals",
    )

    def __init__(
        self,
        run_id: str,
        session_id: str,
        agent_name: str,
        session: SessionTally,
        parent: RunTally | None = None,
        tool_call_id: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.agent_name = agent_name
        self.session = session
        self.parent = parent  # the run this one is a sub-agent of
        self.tool_call_id = tool_call_id  # the parent's tool call it runs in
        self.subagent_count = 0
        self.totals = RunningTotals()
        self.llm_steps = 0
        self.last_finish_reason: str | None = None
