"""The ``kit-telemetry`` command line: one sub-command per module of ``commands``.

The console script and what only it uses live in this package, which ``import
kit_telemetry`` never imports: ``commands`` (the sub-commands) and ``demo`` (the simulated
agent of ``kit-telemetry demo``).

Each command module exposes ``register(subparsers)``, which adds its parser and sets
``handler=run``, and ``run(args, out, err) -> int``. Modules are imported only to build
the parser, so ``kit-telemetry --help`` stays quick.

Exit codes (the ``--help`` epilog lists them too): 0 success; 1 the command ran and found a
problem (or failed); 2 bad usage or input; 130 interrupted; 141 the reader of the output went
away (``| head``), the status a shell reports for a program stopped by SIGPIPE.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from kit_telemetry._version import __version__

COMMANDS = ("demo", "report", "rules", "check", "budgets", "prices", "state")
# Which module implements each command (rules, check and budgets share one).
_MODULES = {
    "demo": "demo",
    "report": "report",
    "rules": "budgets",
    "check": "budgets",
    "budgets": "budgets",
    "prices": "prices",
    "state": "state",
}

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, as a shell reports `yes | head`

_EPILOG = """\
exit status:
  0    ok
  1    the command ran and found a problem: `prices` matched no model, `report` met
       unreadable lines, `state` found no such file or key, `rules` could not write,
       `budgets status` could not read the ledger
  2    usage error or invalid input: bad arguments, an invalid budgets or prices file
       (`check`, `rules`, `prices --prices`), a trace file with nothing readable
  130  interrupted (Ctrl-C)
  141  the reader of the output went away (`kit-telemetry prices | head`); nothing is
       printed on stderr

--json (report, prices, check, budgets status) prints one JSON document on stdout instead of the text;
`kit-telemetry COMMAND --help` lists its keys.
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command that could be imported."""
    parser = argparse.ArgumentParser(
        prog="kit-telemetry",
        description="Observability and budgets for LLM agents, on OpenTelemetry.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}", help="show the version"
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
        return EXIT_USAGE
    try:
        code: int = handler(args, out, err)
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return EXIT_INTERRUPTED
    return code


def entry_point() -> None:
    """Console-script entry: exit with ``main()``'s code.

    When stdout is a pipe whose reader has gone (``kit-telemetry prices | head``), the
    command stops quietly with 141 instead of printing a traceback.
    """
    try:
        code = main()
        # Flushed here, inside the try: a pipe closed after the last write shows up only now.
        sys.stdout.flush()
    except BrokenPipeError:
        # The interpreter flushes stdout once more at exit and would report that failure on
        # stderr; pointing the descriptor at /dev/null lets that last flush succeed.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        code = EXIT_BROKEN_PIPE
    sys.exit(code)
