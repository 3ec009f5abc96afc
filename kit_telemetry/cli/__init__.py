"""The ``kit-telemetry`` command line: one sub-command per module of ``commands``.

The console script and what only it uses live in this package, which ``import
kit_telemetry`` never imports: ``commands`` (the sub-commands) and ``demo`` (the simulated
agent of ``kit-telemetry demo``).

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``handler=run``, and ``run(args, out, err) -> int``. Modules are imported only to build
the parser, so ``kit-telemetry --help`` stays quick.

Exit codes: 0 success, 1 the command ran and found problems (or failed), 2 bad usage or input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TextIO

COMMANDS = ("demo", "report", "rules", "check", "prices", "state")
# Which module implements each command (rules and check share one).
_MODULES = {
    "demo": "demo",
    "report": "report",
    "rules": "budgets",
    "check": "budgets",
    "prices": "prices",
    "state": "state",
}


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command that could be imported."""
    parser = argparse.ArgumentParser(
        prog="kit-telemetry",
        description="Observability and budgets for LLM agents, on OpenTelemetry.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered: set[str] = set()
    for command in COMMANDS:
        module_name = _MODULES[command]
        if module_name in registered:
            continue
        try:
            module = importlib.import_module(f"kit_telemetry.cli.commands.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"kit_telemetry.cli.commands.{module_name}":
                raise
            continue
        module.register(subparsers)
        registered.add(module_name)
    return parser


def main(
    argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run the command line; returns the exit code (the console script exits with it)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(out)
        return 2
    try:
        code: int = handler(args, out, err)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return 130
    return code


def entry_point() -> None:
    """Console-script entry: exit with ``main()``'s code."""
    sys.exit(main())
