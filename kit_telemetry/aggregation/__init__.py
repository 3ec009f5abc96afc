"""The aggregator: folds LLM calls and tool calls into turn, run and session totals.

``processor`` holds ``UsageAggregator`` (a ``SpanProcessor``) and what it reports to;
``totals`` the running totals it keeps.
"""

from __future__ import annotations

from .processor import (
    MAX_OPEN_SESSIONS,
    OPTIONAL_EVENTS,
    EventSink,
    Pricer,
    UsageAggregator,
    UsageMetrics,
)

__all__ = [
    "MAX_OPEN_SESSIONS",
    "OPTIONAL_EVENTS",
    "EventSink",
    "Pricer",
    "UsageAggregator",
    "UsageMetrics",
]
