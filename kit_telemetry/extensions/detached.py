"""``DetachedHost``: what a context built by hand runs against, with no telemetry around it.

The Python agent's extensions test their handlers with ``ExtensionContext(agent, cwd,
tools)``; such a context needs state, notices and usage without a running
``ExtensionSpanProcessor``. This host keeps state in memory, logs notices and reports zero
usage.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from ..events import UsageTotals
from ..state import SessionState
from ..tools import ToolDefinition

logger = logging.getLogger("kit_telemetry")

_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class DetachedHost:
    """Serves one hand-built ``ExtensionContext``: its tools, in-memory state, logged notices."""

    __slots__ = ("_lock", "_states", "_tools")

    def __init__(self, tools: Iterable[ToolDefinition] = ()) -> None:
        """Serve ``tools`` as the registered tools (``ctx.tools``).

        Raises:
            TypeError: an item of ``tools`` is not a ``ToolDefinition``.
        """
        self._tools = tuple(tools)
        for tool in self._tools:
            if not isinstance(tool, ToolDefinition):
                raise TypeError(f"ExtensionContext: tools must be ToolDefinitions, got {tool!r}")
        self._lock = threading.Lock()
        self._states: dict[str, SessionState] = {}

    def tool_definitions(self) -> list[ToolDefinition]:
        """The tools given at construction."""
        return list(self._tools)

    def session_state(self, session_id: str) -> SessionState:
        """The session's store, in memory only (nothing is written to disk)."""
        with self._lock:
            state = self._states.get(session_id)
            if state is None:
                state = self._states[session_id] = SessionState(None)
            return state

    def session_usage(self, session_id: str) -> UsageTotals:
        """Zero totals: no spans are aggregated here."""
        return UsageTotals()

    def emit_custom(
        self, extension: str, session_id: str, name: str, payload: Any, span: ReadableSpan | None
    ) -> None:
        """Drop the custom event: no other extension is loaded to receive it."""

    def notify(self, extension: str, message: str, type: str) -> None:
        """Log the notice (as the processor's default notifier does)."""
        logger.log(_LEVELS[type], "[%s] %s", extension or "extension", message)
