"""Bound series: the record function of one label combination, and bundles of them.

A series is bound once, on the first record of its labels; afterwards recording is a call
of its record function: the prometheus-client child's public ``inc``, ``observe`` or
``set`` (and the OpenTelemetry instrument's, when a meter provider is given).
"""

from __future__ import annotations

from collections.abc import Callable

Record = Callable[[float], None]
"""Records one value into one series (a counter's increment, a gauge's value...)."""


def noop(_: float) -> None:
    """Records nothing: the series a ``budget_denied`` call never touches."""
    return None


class LLMSeries:
    """Everything one ``record_llm_call`` key touches, bound once."""

    __slots__ = (
        "cache_read",
        "cache_write",
        "calls",
        "cost",
        "duration",
        "input",
        "output",
        "reasoning",
        "unpriced",
        "usage_input",
        "usage_output",
    )

    def __init__(self, calls: Record) -> None:
        self.calls = calls
        # None for calls that never reached the model (budget_denied).
        self.duration: Record | None = None
        self.input: Record = noop
        self.cache_read: Record = noop
        self.cache_write: Record = noop
        self.output: Record = noop
        self.reasoning: Record = noop
        self.cost: Record = noop
        self.unpriced: Record = noop
        self.usage_input: Record = noop
        self.usage_output: Record = noop


class RunSeries:
    """Everything one ``record_run`` key touches, bound once."""

    __slots__ = ("cost", "duration", "genai_duration", "llm_calls", "runs", "tool_calls")

    def __init__(
        self, runs: Record, duration: Record, cost: Record, llm: Record, tools: Record
    ) -> None:
        self.runs = runs
        self.duration = duration
        self.cost = cost
        self.llm_calls = llm
        self.tool_calls = tools
        self.genai_duration: Record = noop
