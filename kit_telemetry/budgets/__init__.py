"""Budgets: limits on cost, tokens and calls, enforced before each LLM or tool call.

Modules, one noun each: ``config`` (budget definitions and the TOML loader), ``windows``
(calendar and rolling windows), ``ledger`` (the ``LedgerBackend`` protocol, the in-memory
ledger and ``open_ledger``), ``sqlite`` and ``redis`` (shared ledgers), ``enforcer``
(admission and settlement), ``alerts`` (alert sinks) and ``rules`` (Prometheus rules).
"""

from __future__ import annotations

from .config import (
    AlertSinkConfig,
    Budget,
    BudgetConfig,
    load_budget_config,
    parse_budget_config,
)
from .enforcer import Admission, BudgetEnforcer, BudgetMetrics, BudgetStatus, CallScope
from .ledger import (
    Counter,
    CounterStatus,
    LedgerBackend,
    LedgerError,
    MemoryLedger,
    ReserveOutcome,
    open_ledger,
)

__all__ = [
    "Admission",
    "AlertSinkConfig",
    "Budget",
    "BudgetConfig",
    "BudgetEnforcer",
    "BudgetMetrics",
    "BudgetStatus",
    "CallScope",
    "Counter",
    "CounterStatus",
    "LedgerBackend",
    "LedgerError",
    "MemoryLedger",
    "ReserveOutcome",
    "load_budget_config",
    "open_ledger",
    "parse_budget_config",
]
