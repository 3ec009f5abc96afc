"""kit-telemetry: OpenTelemetry-based observability and budgets for LLM agents.

Start with ``kt.configure(...)``; the README is the tour.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from . import usage
from ._version import __version__
from .aggregation import UsageAggregator
from .decisions import Block, Decision, Handled, Replace, Stop, Transform
from .errors import (
    Blocked,
    BudgetExceeded,
    ConfigError,
    EventDecodeError,
    ExtensionLoadError,
    KitTelemetryError,
    LedgerError,
    UnknownCommandError,
    UnknownModelError,
    UsageError,
)
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    BudgetAlertEvent,
    CustomEvent,
    ErrorEvent,
    Event,
    EventType,
    LLMRequestEvent,
    LLMUsageEvent,
    ModelChangeEvent,
    RetryEvent,
    SessionEndEvent,
    SessionStartEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEndEvent,
    TurnStartEvent,
    UsageTotals,
    UserInputEvent,
    event_from_dict,
)
from .extensions import (
    CommandDefinition,
    ExtensionAPI,
    ExtensionContext,
    ExtensionSpanProcessor,
    LoadedExtension,
)
from .instrumentation import (
    LLMCall,
    Run,
    Session,
    ToolCall,
    Turn,
    attach,
    current_run,
    current_session,
    current_turn,
)
from .pricing import ModelPrice, PriceRow, PriceTable, known_models, load_prices
from .telemetry import Telemetry, configure
from .tokens import TokenUsage
from .tools import ToolDefinition, ToolOutcome, tool_schemas

if TYPE_CHECKING:
    from .budgets.config import AlertSinkConfig, Budget, BudgetConfig
    from .budgets.status import BudgetStatus

# Facade names whose module loads on first access (PEP 562): an agent without budgets does
# not pay for the budget model at import. ``configure(budgets=...)`` loads it anyway.
_LAZY: dict[str, tuple[str, str]] = {
    "AlertSinkConfig": (".budgets.config", "AlertSinkConfig"),
    "Budget": (".budgets.config", "Budget"),
    "BudgetConfig": (".budgets.config", "BudgetConfig"),
    "BudgetStatus": (".budgets.status", "BudgetStatus"),
}

__all__ = [
    "AgentEndEvent",
    "AgentStartEvent",
    "AlertSinkConfig",
    "Block",
    "Blocked",
    "Budget",
    "BudgetAlertEvent",
    "BudgetConfig",
    "BudgetExceeded",
    "BudgetStatus",
    "CommandDefinition",
    "ConfigError",
    "CustomEvent",
    "Decision",
    "ErrorEvent",
    "Event",
    "EventDecodeError",
    "EventType",
    "ExtensionAPI",
    "ExtensionContext",
    "ExtensionLoadError",
    "ExtensionSpanProcessor",
    "Handled",
    "KitTelemetryError",
    "LLMCall",
    "LLMRequestEvent",
    "LLMUsageEvent",
    "LedgerError",
    "LoadedExtension",
    "ModelChangeEvent",
    "ModelPrice",
    "PriceRow",
    "PriceTable",
    "Replace",
    "RetryEvent",
    "Run",
    "Session",
    "SessionEndEvent",
    "SessionStartEvent",
    "Stop",
    "SubagentEndEvent",
    "SubagentStartEvent",
    "Telemetry",
    "TokenUsage",
    "ToolCall",
    "ToolCallEvent",
    "ToolDefinition",
    "ToolOutcome",
    "ToolResultEvent",
    "Transform",
    "Turn",
    "TurnEndEvent",
    "TurnStartEvent",
    "UnknownCommandError",
    "UnknownModelError",
    "UsageAggregator",
    "UsageError",
    "UsageTotals",
    "UserInputEvent",
    "__version__",
    "attach",
    "configure",
    "current_run",
    "current_session",
    "current_turn",
    "event_from_dict",
    "known_models",
    "load_prices",
    "tool_schemas",
    "usage",
]


def __getattr__(name: str) -> Any:
    """Import a lazy facade name's module on first access, then keep the name here."""
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, the lazy ones included before their first access."""
    return sorted(set(globals()) | set(__all__))
