"""Budgets: limits on cost, tokens and calls, enforced before each LLM or tool call.

Modules, one noun each: ``config`` (budget definitions and the TOML loader), ``windows``
(calendar and rolling windows), ``ledger`` (the ``LedgerBackend`` protocol, the in-memory
ledger and ``open_ledger``), ``sqlite`` and ``redis`` (shared ledgers), ``enforcer``
(admission, settlement and alerts decisions), ``alerts`` (alert sinks) and ``rules``
(Prometheus alerting rules).
"""

from __future__ import annotations

from .config import (
    AlertSinkConfig,
    Budget,
    BudgetConfig,
    load_budget_config,
    parse_budget_config,
)

__all__ = [
    "AlertSinkConfig",
    "Budget",
    "BudgetConfig",
    "load_budget_config",
    "parse_budget_config",
]
