"""The aggregator: folds LLM calls and tool calls into turn, run and session totals.

``processor`` holds ``UsageAggregator`` (a ``SpanProcessor``) and ``ports`` what it reports
to; the running totals it keeps are ``kit_telemetry.totals``.
"""

from __future__ import annotations

from .ports import OPTIONAL_EVENTS, EventSink, Pricer, SpendSink, UsageMetrics
from .processor import MAX_OPEN_SESSIONS, UsageAggregator

__all__ = [
    "MAX_OPEN_SESSIONS",
    "OPTIONAL_EVENTS",
    "EventSink",
    "Pricer",
    "SpendSink",
    "UsageAggregator",
    "UsageMetrics",
]
