"""``kit-telemetry report TRACES [--session ID] [--html OUT.html] [--json] [--price]``: summarise traces.

Reads an OTLP/JSON lines file (the demo's, or any file in that format), prints per session
and per run the turns, LLM calls, tools, tokens by kind, cost, duration and stop reason, with
cost per model; ``--html`` also writes a self-contained page with waterfalls and charts;
``--json`` prints the same figures as one JSON document (keys listed in ``--help``).

Exit codes: 0 the whole file was read; 1 some lines could not be read (everything else is
still reported) or the HTML page could not be written; 2 nothing could be read (missing
file, not OTLP/JSON) or ``--session`` names no session of the file.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any, TextIO

from kit_telemetry.cli.json_output import write_json
from kit_telemetry.exporters.otlp_json_reader import read_otlp_json
from kit_telemetry.pricing import PriceTable
from kit_telemetry.report import (
    ModelCost,
    Report,
    RunSummary,
    SessionSummary,
    Totals,
    build_report,
    render_html,
    render_text,
)
from kit_telemetry.report.text import MAX_ERRORS, clean
from kit_telemetry.tokens import TokenUsage

_PROG = "kit-telemetry report"

_JSON_KEYS = (
    "--json prints one object: source (the file), span_count, read_errors (messages), "
    "warnings, totals, models, sessions. totals: turn_count, llm_call_count, "
    "budget_denied_count, failed_llm_call_count, tool_call_count, failed_tool_call_count, "
    "tool_names, tokens, cost_usd, unpriced_call_count, cost_complete, duration_ms. tokens: input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, total. models: "
    "provider, model, llm_call_count, budget_denied_count, tokens, cost_usd, "
    "unpriced_call_count. sessions: session_id, start_ns, end_ns, totals, models, warnings, "
    "runs. runs: run_id, trace_id, agent_name, start_ns, end_ns, stop_reason, error, totals, "
    "totals_source, models, warnings, inferred."
)


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
            "HTML page could not be written; 2 nothing could be read or no such session "
            "(nothing on stdout). " + _JSON_KEYS
        ),
    )
    parser.add_argument("traces", metavar="TRACES", help="the OTLP/JSON lines file to read")
    parser.add_argument("--session", metavar="ID", help="report only the session with this id")
    parser.add_argument(
        "--html",
        metavar="OUT.html",
        help="also write a self-contained HTML page (waterfalls, cost charts, tables)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the report as JSON (keys listed below)"
    )
    parser.add_argument(
        "--price",
        action="store_true",
        help=(
            "price the LLM calls of other instrumentations (spans with token counts but no "
            "kit.usage.cost_usd, e.g. from OpenLLMetry or OpenInference) from the bundled "
            "price table"
        ),
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

    # Calls of other instrumentations come without a cost; priced only when asked: in a file
    # kit-telemetry wrote, "unpriced" is what was known when the call was made.
    pricer = PriceTable() if args.price else None
    report = build_report(traces.spans, read_errors=traces.errors, pricer=pricer)
    if args.session is not None:
        try:
            report = report.only_session(args.session)
        except KeyError:
            known = ", ".join(clean(s.session_id) for s in report.sessions)
            err.write(f"{_PROG}: no session {args.session!r} in {path}; sessions: {known}\n")
            return 2

    if args.json:
        write_json(_document(report, path), out)
    else:
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
        # With --json, stdout holds the document alone.
        (err if args.json else out).write(f"\nHTML report written to {args.html}\n")
    return code


def _document(report: Report, source: str) -> dict[str, Any]:
    return {
        "source": source,
        "span_count": report.span_count,
        "read_errors": list(report.read_errors),
        "warnings": list(report.warnings),
        "totals": _totals(report.totals),
        "models": [_model(m) for m in report.models],
        "sessions": [_session(s) for s in report.sessions],
    }


def _session(session: SessionSummary) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "start_ns": session.start_ns,
        "end_ns": session.end_ns,
        "totals": _totals(session.totals),
        "models": [_model(m) for m in session.models],
        "warnings": list(session.warnings),
        "runs": [_run(r) for r in session.runs],
    }


def _run(run: RunSummary) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "trace_id": run.trace_id,
        "agent_name": run.agent_name,
        "start_ns": run.start_ns,
        "end_ns": run.end_ns,
        "stop_reason": run.stop_reason,
        "error": run.error,
        "totals": _totals(run.totals),
        "totals_source": run.totals_source,
        "models": [_model(m) for m in run.models],
        "warnings": list(run.warnings),
        "inferred": run.inferred,
    }


def _totals(totals: Totals) -> dict[str, Any]:
    return {
        "turn_count": totals.turn_count,
        "llm_call_count": totals.llm_call_count,
        "budget_denied_count": totals.budget_denied_count,
        "failed_llm_call_count": totals.failed_llm_call_count,
        "tool_call_count": totals.tool_call_count,
        "failed_tool_call_count": totals.failed_tool_call_count,
        "tool_names": list(totals.tool_names),
        "tokens": _tokens(totals.tokens),
        "cost_usd": totals.cost_usd,
        "unpriced_call_count": totals.unpriced_call_count,
        "cost_complete": totals.cost_complete,
        "duration_ms": totals.duration_ms,
    }


def _model(model: ModelCost) -> dict[str, Any]:
    return {
        "provider": model.provider,
        "model": model.model,
        "llm_call_count": model.llm_call_count,
        "budget_denied_count": model.budget_denied_count,
        "tokens": _tokens(model.tokens),
        "cost_usd": model.cost_usd,
        "unpriced_call_count": model.unpriced_call_count,
    }


def _tokens(tokens: TokenUsage) -> dict[str, int]:
    return {**tokens.as_fields(), "total": tokens.total}


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
