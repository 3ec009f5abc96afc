"""Budgets: limits on cost, tokens and calls, enforced before each LLM or tool call.

Modules, one noun each: ``config`` (budget definitions and the TOML loader), ``windows``
(calendar and rolling windows), ``ledger`` (the ``LedgerBackend`` protocol, counters and
``open_ledger``), ``memory`` (the in-process ledger), ``sqlite`` and ``redis`` (shared
ledgers), ``calls`` (a call's scope and admission), ``plans`` (budgets compiled for the hot
path), ``enforcer`` (admission and settlement), ``journal`` (spend kept through a ledger
outage), ``status`` (budget figures and gauges),
``thresholds`` (threshold alerts), ``alerts`` (alert sinks and their dispatcher) and
``webhook`` (the webhook sink). The Prometheus rules generated from budgets are offline
tooling, in ``kit_telemetry.rules``.

Import from the modules themselves (``kit_telemetry.budgets.enforcer``...): the package
imports none of them, so that an agent without budgets loads only what it uses.
"""
