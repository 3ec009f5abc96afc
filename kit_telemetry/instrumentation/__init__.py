"""The instrumentation API: sessions, runs, turns, LLM calls and tool calls.

Each is a context manager (``with`` and ``async with``) that starts a span on entry and
ends it on exit; the spans follow the GenAI semantic conventions. Exceptions leaving a
block mark the span as an error and are re-raised unchanged. Telemetry never raises into
the agent on this path except ``BudgetExceeded``: bad input is logged and counted (raised
only with ``strict=True``).

Modules: ``context`` (the current session, run and turn; ``attach`` and ``wrap``),
``scope`` (what every span-backed handle shares), ``session``, ``run`` (runs and turns)
and ``calls`` (LLM calls and tool calls).
"""

from __future__ import annotations

from .calls import LLMCall, ToolCall
from .context import attach, current_run, current_session, current_turn, wrap
from .run import Run, Turn
from .session import Session

__all__ = [
    "LLMCall",
    "Run",
    "Session",
    "ToolCall",
    "Turn",
    "attach",
    "current_run",
    "current_session",
    "current_turn",
    "wrap",
]
