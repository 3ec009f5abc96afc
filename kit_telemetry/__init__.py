"""kit-telemetry: OpenTelemetry-based observability and budgets for LLM agents.

Start with ``kt.configure(...)``; the README is the tour.
"""

from __future__ import annotations

from . import usage
from ._version import __version__
from .aggregation import UsageAggregator
from .budgets.config import AlertSinkConfig, Budget, BudgetConfig
from .budgets.status import BudgetStatus
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
