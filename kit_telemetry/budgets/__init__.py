"""Budgets: limits on cost, tokens and calls, enforced before each LLM or tool call.

Modules, one noun each: ``config`` (budget definitions and the TOML loader), ``windows``
(calendar and rolling windows), ``ledger`` (the ``LedgerBackend`` protocol, counters and
``open_ledger``), ``memory`` (the in-process ledger), ``sqlite`` and ``redis`` (shared
ledgers), ``calls`` (a call's scope and admission), ``plans`` (budgets compiled for the hot
path), ``enforcer`` (admission and settlement), ``status`` (budget figures and gauges),
``thresholds`` (threshold alerts), ``alerts`` (alert sinks and their dispatcher) and
``webhook`` (the webhook sink). The Prometheus rules generated from budgets are offline
tooling, in ``kit_telemetry.rules``.
"""

from __future__ import annotations

from .calls import Admission, CallScope
from .config import (
    AlertSinkConfig,
    Budget,
    BudgetConfig,
    load_budget_config,
    parse_budget_config,
)
from .enforcer import BudgetEnforcer
from .ledger import (
    Counter,
    CounterStatus,
    LedgerBackend,
    LedgerError,
    ReserveOutcome,
    open_ledger,
)
from .memory import MemoryLedger
from .status import BudgetMetrics, BudgetStatus

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
