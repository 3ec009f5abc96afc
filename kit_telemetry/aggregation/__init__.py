"""The aggregator: folds LLM calls and tool calls into turn, run and session totals.

``processor`` holds ``UsageAggregator`` (a ``SpanProcessor``); ``ports`` what it reports
to; ``totals`` the running totals it keeps.
"""

from __future__ import annotations

from .ports import OPTIONAL_EVENTS, EventSink, Pricer, UsageMetrics
from .processor import MAX_OPEN_SESSIONS, UsageAggregator

__all__ = [
    "MAX_OPEN_SESSIONS",
    "OPTIONAL_EVENTS",
    "EventSink",
    "Pricer",
    "UsageAggregator",
    "UsageMetrics",
]
