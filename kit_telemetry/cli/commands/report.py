"""``kit-telemetry report TRACES [--session ID] [--html OUT.html]``: summarise a trace file.

Reads an OTLP/JSON lines file (the demo's, or any file in that format), prints per session
and per run the turns, LLM calls, tools, tokens by kind, cost, duration and stop reason, with
cost per model; ``--html`` also writes a self-contained page with waterfalls and charts.

Exit codes: 0 the whole file was read; 1 some lines could not be read (everything else is
still reported) or the HTML page could not be written; 2 nothing could be read (missing
file, not OTLP/JSON) or ``--session`` names no session of the file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import TextIO

from kit_telemetry.exporters.otlp_json_reader import read_otlp_json
from kit_telemetry.report import build_report, render_html, render_text
from kit_telemetry.report.text import MAX_ERRORS, clean

_PROG = "kit-telemetry report"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command to the ``kit-telemetry`` parser."""
    parser = subparsers.add_parser(
        "report",
        help="summarise an OTLP/JSON trace file per session and run (text, or an HTML page)",
        description=(
            "Read an OTLP/JSON trace file (one ExportTraceServiceRequest per line, as written "
            "by `kit-telemetry demo --traces` or the Collector's file exporter) and print per "
            "session and per run: turns, LLM calls, tools, tokens by kind, cost, duration, stop "
            "reason, and cost per model. Totals are recomputed from the call spans, so files "
            "from other GenAI instrumentations work too."
        ),
        epilog=(
            "exit status: 0 ok; 1 some lines were unreadable (the rest is reported) or the "
            "HTML page could not be written; 2 nothing could be read or no such session"
        ),
    )
    parser.add_argument("traces", metavar="TRACES", help="the OTLP/JSON lines file to read")
    parser.add_argument("--session", metavar="ID", help="report only the session with this id")
    parser.add_argument(
        "--html",
        metavar="OUT.html",
        help="also write a self-contained HTML page (waterfalls, cost charts, tables)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Print the report (and write the page); see the module docstring for exit codes."""
    path: str = args.traces
    try:
        traces = read_otlp_json(path)
    except FileNotFoundError:
        err.write(f"{_PROG}: {path}: no such file\n")
        return 2
    except OSError as exc:
        err.write(f"{_PROG}: {path}: cannot read: {exc.strerror or exc}\n")
        return 2

    for message in traces.errors[:MAX_ERRORS]:
        err.write(f"{_PROG}: {path}: {clean(message)}\n")
    hidden = len(traces.errors) - MAX_ERRORS
    if hidden > 0:
        err.write(f"{_PROG}: {path}: ... and {hidden} more unreadable lines\n")
    if not traces.spans:
        if traces.errors:
            err.write(
                f"{_PROG}: {path}: no span could be read; is it an OTLP/JSON trace file "
                "(one ExportTraceServiceRequest JSON object per line)?\n"
            )
        else:
            err.write(f"{_PROG}: {path}: the file holds no spans\n")
        return 2

    report = build_report(traces.spans, read_errors=traces.errors)
    if args.session is not None:
        try:
            report = report.only_session(args.session)
        except KeyError:
            known = ", ".join(clean(s.session_id) for s in report.sessions)
            err.write(f"{_PROG}: no session {args.session!r} in {path}; sessions: {known}\n")
            return 2

    render_text(report, out, source=path)
    code = 1 if traces.errors else 0
    if traces.errors:
        err.write(
            f"{_PROG}: {path}: {len(traces.errors)} unreadable line(s) left out of the report\n"
        )
    if args.html is not None:
        try:
            _write_atomically(Path(args.html), render_html(report, source=path))
        except OSError as exc:
            err.write(f"{_PROG}: cannot write {args.html}: {exc.strerror or exc}\n")
            return 1
        out.write(f"\nHTML report written to {args.html}\n")
    return code


def _write_atomically(target: Path, text: str) -> None:
    # A reader (a browser reloading the page) never sees half a page.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
