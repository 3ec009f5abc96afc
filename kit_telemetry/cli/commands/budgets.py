"""``kit-telemetry rules``, ``check`` and ``budgets status``: budget files on the command line.

``rules BUDGETS.toml -o DIR`` writes Prometheus alerting rules and their promtool test file;
``check BUDGETS.toml`` validates a budgets file as ``configure(budgets=...)`` does (alert
callbacks are imported) and prints what it defines; ``budgets status BUDGETS.toml`` reads
the file's ledger and prints what every budget has spent and reserved so far.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from kit_telemetry.budgets.alerts import build_sinks
from kit_telemetry.budgets.config import AlertSinkConfig, Budget, BudgetConfig, load_budget_config
from kit_telemetry.budgets.enforcer import BudgetEnforcer
from kit_telemetry.budgets.gate import budget_config
from kit_telemetry.budgets.status import BudgetStatus
from kit_telemetry.cli.json_output import write_json
from kit_telemetry.errors import ConfigError, LedgerError
from kit_telemetry.rules import RULES_FILENAME, RULES_TEST_FILENAME, write_rules

__all__ = ["register", "run", "run_check", "run_rules", "run_status", "validate_budgets"]

# The two commands this module serves, and what each does for `--help`.
_HELP = {
    "rules": "write Prometheus alerting rules (and their promtool tests) for a budgets file",
    "check": "validate a budgets file and list its budgets",
    "budgets": "read a budgets file's ledger: spent, reserved and remaining per budget",
}

_STATUS_EPILOG = (
    "status opens the ledger the file names (sqlite:PATH or redis://...) and prints, per "
    "budget and live scope key: unit, limit, spent, reserved, remaining and the end of the "
    "current window. A memory ledger lives inside the agent's process: use "
    "tel.budget_status() there. --json prints one object: file; ledger (URL, password "
    "hidden); budgets (name, scope_key, unit, limit, spent, reserved, remaining, window_end "
    "as Unix seconds or null). Exit status: 0 read; 1 the ledger could not be read; 2 an "
    "invalid budgets file."
)

_CHECK_EPILOG = (
    "check validates what configure(budgets=...) validates, without opening the ledger: "
    "every budget and [[alert]] field, and that each callback 'pkg.module:function' imports "
    "(with the current directory on the import path, as `python -m` has it). "
    "--json prints one object: file; valid (true/false); error (the message, or null); and "
    "when valid: ledger (URL, password hidden), on_ledger_error, budgets (name, scope, "
    "limit_usd, limit_tokens, max_llm_calls, max_tool_calls, window, timezone, action, "
    "warn_at, match; unset limits are null), alerts (kind, target (webhook URLs cut to "
    "scheme://host), events). Exit status: 0 valid; 2 invalid (the message names budget or "
    "alert, field and value)."
)


def register(subparsers: Any) -> None:
    """Add the ``rules`` and ``check`` sub-commands to the CLI's subparsers."""
    rules = subparsers.add_parser("rules", help=_HELP["rules"], description=_HELP["rules"])
    rules.add_argument("budgets", metavar="BUDGETS.toml", help="the budgets file")
    rules.add_argument(
        "-o",
        "--output-dir",
        metavar="DIR",
        default=".",
        help=f"where to write {RULES_FILENAME} and {RULES_TEST_FILENAME} (default: .)",
    )
    rules.set_defaults(handler=run)
    check = subparsers.add_parser(
        "check", help=_HELP["check"], description=_HELP["check"], epilog=_CHECK_EPILOG
    )
    check.add_argument("budgets", metavar="BUDGETS.toml", help="the budgets file")
    check.add_argument(
        "--json", action="store_true", help="print the result as JSON (keys listed below)"
    )
    check.set_defaults(handler=run)
    budgets = subparsers.add_parser("budgets", help=_HELP["budgets"], description=_HELP["budgets"])
    actions = budgets.add_subparsers(dest="action", metavar="ACTION", required=True)
    status = actions.add_parser(
        "status",
        help="spent, reserved and remaining per budget and scope key",
        description="Spent, reserved and remaining per budget and scope key, from the ledger.",
        epilog=_STATUS_EPILOG,
    )
    status.add_argument("budgets", metavar="BUDGETS.toml", help="the budgets file")
    status.add_argument(
        "--json", action="store_true", help="print the result as JSON (keys listed below)"
    )
    status.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``rules``, ``check`` or ``budgets status``, whichever ``args.command`` names."""
    if args.command == "rules":
        return run_rules(args, out, err)
    if args.command == "budgets":
        return run_status(args, out, err)
    return run_check(args, out, err)


def _load(path: str, command: str, err: TextIO) -> BudgetConfig | None:
    try:
        return load_budget_config(path)
    except ConfigError as exc:
        err.write(f"kit-telemetry {command}: {exc}\n")
        return None


def run_rules(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Write the rules and test files; print their paths.

    Returns:
        0 when written, 2 for an invalid budgets file, 1 when the files cannot be written.
    """
    config = _load(args.budgets, "rules", err)
    if config is None:
        return 2
    try:
        paths = write_rules(config, args.output_dir)
    except OSError as exc:
        err.write(f"kit-telemetry rules: cannot write to {args.output_dir}: {exc}\n")
        return 1
    for path in paths:
        out.write(f"{path}\n")
    return 0


def run_check(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Validate a budgets file and print a table (or JSON) of its budgets and alert sinks.

    Returns:
        0 when the file is valid, 2 when it is not (the error names budget, field, value).
    """
    path: str = args.budgets
    try:
        config = validate_budgets(path)
    except ConfigError as exc:
        message = str(exc)
        if not message.startswith(f"{path}: "):
            # Errors found after parsing (an alert callback) do not name the file.
            message = f"{path}: {message}"
        err.write(f"kit-telemetry check: {message}\n")
        if args.json:
            write_json({"file": path, "valid": False, "error": message}, out)
        return 2
    if args.json:
        write_json(_check_document(path, config), out)
        return 0
    budgets = len(config.budgets)
    sinks = len(config.alerts)
    out.write(
        f"{args.budgets}: OK: {budgets} budget{'s' * (budgets != 1)}, "
        f"{sinks} alert sink{'s' * (sinks != 1)}, ledger {_without_password(config.ledger)} "
        f"(on error: {config.on_ledger_error})\n\n"
    )
    out.write(
        _table(
            ["NAME", "SCOPE", "LIMITS", "WINDOW", "ACTION", "WARN_AT", "MATCH"],
            [_budget_row(b) for b in config.budgets],
        )
    )
    if config.alerts:
        out.write("\n")
        out.write(_table(["ALERT", "TARGET", "EVENTS"], [_alert_row(a) for a in config.alerts]))
    promtool = shutil.which("promtool")
    if promtool is not None:
        out.write(
            f"\npromtool found ({promtool}): `kit-telemetry rules {args.budgets} -o DIR`, then "
            f"`promtool check rules DIR/{RULES_FILENAME}` and "
            f"`promtool test rules DIR/{RULES_TEST_FILENAME}`\n"
        )
    return 0


def run_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print every budget's figures from the ledger its file names.

    Returns:
        0 when read, 1 when the ledger cannot be read, 2 for an invalid budgets file.
    """
    config = _load(args.budgets, "budgets status", err)
    if config is None:
        return 2
    ledger = _without_password(config.ledger)
    if config.ledger == "memory":
        err.write(
            "kit-telemetry budgets status: the memory ledger lives in the agent's process; "
            "use tel.budget_status() there, or a sqlite: or redis:// ledger to read it here\n"
        )
    try:
        enforcer = BudgetEnforcer(config)
    except (LedgerError, OSError) as exc:
        err.write(f"kit-telemetry budgets status: cannot open the ledger {ledger}: {exc}\n")
        return 1
    try:
        # status() reports a ledger it cannot read as empty; here that is the finding.
        enforcer.ledger.live_counters(now_s=time.time())
        statuses = enforcer.status()
    except (LedgerError, OSError) as exc:
        err.write(f"kit-telemetry budgets status: cannot read the ledger {ledger}: {exc}\n")
        return 1
    finally:
        enforcer.close()
    if args.json:
        write_json(
            {
                "file": args.budgets,
                "ledger": ledger,
                "budgets": [_status_document(status) for status in statuses],
            },
            out,
        )
        return 0
    out.write(f"{args.budgets}: ledger {ledger}\n\n")
    out.write(
        _table(
            [
                "BUDGET",
                "SCOPE_KEY",
                "UNIT",
                "LIMIT",
                "SPENT",
                "RESERVED",
                "REMAINING",
                "WINDOW_END",
            ],
            [_status_row(status) for status in statuses],
        )
    )
    return 0


def _status_document(status: BudgetStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "scope_key": status.scope_key,
        "unit": status.unit,
        "limit": status.limit,
        "spent": status.spent,
        "reserved": status.reserved,
        "remaining": status.remaining,
        "window_end": status.window_end,
    }


def _status_row(status: BudgetStatus) -> list[str]:
    def amount(value: float) -> str:
        return f"{value:.6f}" if status.unit == "usd" else f"{value:,.0f}"

    window_end = "-"
    if status.window_end is not None:
        window_end = datetime.fromtimestamp(status.window_end, timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%SZ"
        )
    return [
        status.name,
        status.scope_key,
        status.unit,
        amount(status.limit),
        amount(status.spent),
        amount(status.reserved),
        amount(status.remaining),
        window_end,
    ]


def validate_budgets(path: str) -> BudgetConfig:
    """Check a budgets file the way ``configure(budgets=path)`` does, without a ledger.

    The file is parsed by the function ``configure`` uses, then its alert sinks are built
    (which imports callbacks) and closed at once; the ledger is not opened, so no SQLite file
    is created and no Redis server is contacted.

    Raises:
        ConfigError: whatever ``configure`` would raise for the file or its alert sinks.
    """
    config = budget_config(path)
    with _cwd_importable():
        sinks = build_sinks(config.alerts)
    for sink in sinks:
        sink.close(0.0)
    return config


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    # The console script's import path starts at its own bin directory, whereas the agent
    # that calls configure() usually runs from the project: `callback = "hooks:on_alert"`
    # with hooks.py beside the budgets file must import here too.
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def _check_document(path: str, config: BudgetConfig) -> dict[str, Any]:
    return {
        "file": path,
        "valid": True,
        "error": None,
        "ledger": _without_password(config.ledger),
        "on_ledger_error": config.on_ledger_error,
        "budgets": [
            {
                "name": b.name,
                "scope": b.scope,
                "limit_usd": b.limit_usd,
                "limit_tokens": b.limit_tokens,
                "max_llm_calls": b.max_llm_calls,
                "max_tool_calls": b.max_tool_calls,
                "window": b.window,
                "timezone": b.timezone,
                "action": b.action,
                "warn_at": list(b.warn_at),
                "match": dict(b.match),
            }
            for b in config.budgets
        ],
        "alerts": [
            {"kind": a.kind, "target": _alert_target(a), "events": list(a.events)}
            for a in config.alerts
        ],
    }


def _without_password(url: str) -> str:
    # redis://:secret@host/0 must not end up in a terminal log or a CI transcript.
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urllib.parse.urlunsplit(parts._replace(netloc=user + netloc))


def _limits(budget: Budget) -> str:
    parts = []
    if budget.limit_usd is not None:
        parts.append(f"${budget.limit_usd:g}")
    if budget.limit_tokens is not None:
        parts.append(f"{budget.limit_tokens:,} tokens")
    if budget.max_llm_calls is not None:
        parts.append(f"{budget.max_llm_calls} LLM calls")
    if budget.max_tool_calls is not None:
        parts.append(f"{budget.max_tool_calls} tool calls")
    return ", ".join(parts)


def _window(budget: Budget) -> str:
    if budget.window in ("hour", "day", "week", "month"):
        return f"{budget.window} ({budget.timezone})"
    return budget.window


def _budget_row(budget: Budget) -> list[str]:
    warn_at = ", ".join(f"{t * 100:g}%" for t in budget.warn_at) or "-"
    match = " ".join(f"{k}={v}" for k, v in budget.match.items()) or "-"
    return [
        budget.name,
        budget.scope,
        _limits(budget),
        _window(budget),
        budget.action,
        warn_at,
        match,
    ]


def _alert_target(alert: AlertSinkConfig) -> str:
    if alert.url is not None:
        # Only where it goes: webhook URLs often hold a secret in the path or query.
        parts = urllib.parse.urlsplit(alert.url)
        target = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
        if parts.path not in ("", "/") or parts.query:
            target += "/..."
        return target
    return alert.callback or "logger kit_telemetry"


def _alert_row(alert: AlertSinkConfig) -> list[str]:
    return [alert.kind, _alert_target(alert), ", ".join(alert.events)]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines) + "\n"
