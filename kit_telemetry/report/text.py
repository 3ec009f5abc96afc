"""The plain-text report: tables per session and a grand total, for a terminal.

The number formats here (``format_usd``, ``format_tokens``, ``format_duration_ms``) are
shared with the HTML page so that both show the same figures.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from ..tokens import TOKEN_KINDS
from .model import ModelCost, Report, RunSummary, SessionSummary, Totals, figure

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """A trace string made safe for a terminal: control characters shown as escapes."""
    # A model or tool name is data from the file; an ANSI escape in it must not drive the tty.
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def format_usd(value: float) -> str:
    """Dollars with six decimals: LLM calls often cost fractions of a cent."""
    return f"{value:.6f}"


def format_cost(row: Totals | ModelCost, currency: str = "") -> str:
    """A row's cost that never shows an unpriced call as free.

    ``unpriced`` when no call was priced, ``≥`` before the sum when some were not (the sum
    is then a lower bound), the plain sum otherwise.
    """
    unpriced = row.unpriced_call_count
    if unpriced and unpriced >= row.llm_call_count:
        return "unpriced"
    return ("≥" if unpriced else "") + currency + format_usd(row.cost_usd)


def format_tokens(value: int) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def format_duration_ms(value: float) -> str:
    """A duration in a readable unit: ``0.42 ms``, ``850 ms``, ``5.0 s``, ``2m 05s``, ``1h 02m``."""
    if value < 9.95:
        # Tool calls and simulated agents take microseconds; "0 ms" would hide them.
        return f"{value:.2f} ms" if value < 0.995 else f"{value:.1f} ms"
    if value < 999.5:
        return f"{value:.0f} ms"
    if value < 59_950:
        return f"{value / 1000:.1f} s"
    minutes, seconds = divmod(round(value / 1000), 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_time_ns(value: int) -> str:
    """A Unix-nanosecond timestamp as UTC wall-clock time."""
    moment = datetime.datetime.fromtimestamp(value / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


MAX_ERRORS = 10
"""How many unreadable lines a report lists; past that a file is clearly not a trace file."""
INFERRED_NOTE = "LLM/tool calls with no invoke_agent span in the file, grouped by trace"
FALLBACK_NOTE = "no call spans in the file; totals from kit.run.* attributes"


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One column of a totals table: its header and how a row shows it."""

    header: str
    key: str
    numeric: bool = True


# One column per token kind, headed by its name without "_tokens" ("cache read").
TOKEN_COLUMNS: tuple[Column, ...] = tuple(
    Column(header=kind.removesuffix("_tokens").replace("_", " "), key=kind) for kind in TOKEN_KINDS
)

# The run table's columns, in order; the HTML tables use the same list.
TOTALS_COLUMNS: tuple[Column, ...] = (
    Column(header="turns", key="turn_count"),
    Column(header="LLM calls", key="llm_call_count"),
    Column(header="denied", key="budget_denied_count"),
    Column(header="tools", key="tool_call_count"),
    Column(header="failed", key="failed_tool_call_count"),
    *TOKEN_COLUMNS,
    Column(header="cost USD", key="cost_usd"),
    Column(header="unpriced", key="unpriced_call_count"),
    Column(header="duration", key="duration_ms"),
)

MODEL_COLUMNS: tuple[Column, ...] = (
    Column(header="provider", key="provider", numeric=False),
    Column(header="model", key="model", numeric=False),
    Column(header="LLM calls", key="llm_call_count"),
    Column(header="denied", key="budget_denied_count"),
    *TOKEN_COLUMNS,
    Column(header="cost USD", key="cost_usd"),
    Column(header="unpriced", key="unpriced_call_count"),
)


def cell(row: Totals | ModelCost, key: str) -> str:
    """How one figure of a totals or model row is written, in text and HTML alike."""
    value = figure(row, key)
    if key == "cost_usd":
        return format_cost(row)
    if key == "duration_ms":
        return format_duration_ms(value)
    if isinstance(value, int):
        return format_tokens(value)
    return clean(str(value))


def _table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool]
) -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(cells, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return [line(headers), rule, *(line(r) for r in rows)]


def _run_table(runs: Sequence[RunSummary], total: Totals) -> list[str]:
    headers = ["run", "agent", *(c.header for c in TOTALS_COLUMNS), "stop reason"]
    numeric = [False, False, *(True for _ in TOTALS_COLUMNS), False]
    rows = [
        [
            clean(run.run_id),
            clean(run.agent_name),
            *(cell(run.totals, c.key) for c in TOTALS_COLUMNS),
            clean(run.stop_reason or "-"),
        ]
        for run in runs
    ]
    rows.append(["total", "", *(cell(total, c.key) for c in TOTALS_COLUMNS), ""])
    return _table(headers, rows, numeric)


def _model_table(models: Sequence[ModelCost]) -> list[str]:
    headers = [c.header for c in MODEL_COLUMNS]
    rows = [[cell(m, c.key) for c in MODEL_COLUMNS] for m in models]
    return _table(headers, rows, [c.numeric for c in MODEL_COLUMNS])


def _indent(lines: Sequence[str], by: str = "  ") -> list[str]:
    return [by + line if line else line for line in lines]


def _session_lines(session: SessionSummary) -> list[str]:
    runs = len(session.runs)
    lines = [
        f"Session {clean(session.session_id)} · {runs} run{'s' if runs != 1 else ''} · "
        f"{format_time_ns(session.start_ns)} · "
        f"{format_duration_ms(max(0, session.end_ns - session.start_ns) / 1e6)} wall clock",
        "",
    ]
    if session.runs:
        lines += _indent(_run_table(session.runs, session.totals))
    else:
        lines.append("  no runs in the file")
    notes = []
    for run in session.runs:
        if run.error:
            notes.append(f"{clean(run.run_id)}: {clean(run.error)}")
        if run.totals.tool_call_count:
            notes.append(f"{clean(run.run_id)} tools: {clean(', '.join(run.totals.tool_names))}")
        if run.totals_source == "run attributes":
            notes.append(f"{clean(run.run_id)}: {FALLBACK_NOTE}")
        if run.inferred:
            notes.append(f"{clean(run.run_id)}: {INFERRED_NOTE}")
    if notes:
        lines += ["", *_indent(notes)]
    if session.models:
        lines += ["", "  cost by model", *_indent(_model_table(session.models))]
    return lines


def _session_totals_table(report: Report) -> list[str]:
    headers = ["session", "runs", *(c.header for c in TOTALS_COLUMNS)]
    numeric = [False, True, *(True for _ in TOTALS_COLUMNS)]
    rows = [
        [
            clean(s.session_id),
            format_tokens(len(s.runs)),
            *(cell(s.totals, c.key) for c in TOTALS_COLUMNS),
        ]
        for s in report.sessions
    ]
    rows.append(
        [
            "total",
            format_tokens(len(report.runs)),
            *(cell(report.totals, c.key) for c in TOTALS_COLUMNS),
        ]
    )
    return _table(headers, rows, numeric)


def render_text(report: Report, out: TextIO, *, source: str | None = None) -> None:
    """Write the report as plain-text tables.

    Args:
        report: the report to write.
        out: where to write it.
        source: the trace file's name, for the heading.
    """
    title = "kit-telemetry report" + (f": {clean(source)}" if source else "")
    lines = [title, "=" * len(title)]
    sessions, runs = len(report.sessions), len(report.runs)
    summary = (
        f"{sessions} session{'s' if sessions != 1 else ''} · {runs} run{'s' if runs != 1 else ''}"
        f" · {report.span_count} spans"
    )
    if report.sessions:
        first = min(s.start_ns for s in report.sessions)
        last = max(s.end_ns for s in report.sessions)
        summary += f" · {format_time_ns(first)} to {format_time_ns(last)}"
    lines += [summary, ""]
    for session in report.sessions:
        lines += [*_session_lines(session), ""]
    lines += ["Grand total", "", *_indent(_session_totals_table(report))]
    if report.models:
        lines += ["", "  cost by model (all sessions)", *_indent(_model_table(report.models))]
    if report.warnings:
        lines += ["", "Warnings (recorded totals that disagree with the spans in the file)"]
        lines += _indent([clean(w) for w in report.warnings])
    if report.read_errors:
        lines += ["", "Unreadable input (left out of the figures above)"]
        lines += _indent([clean(e) for e in report.read_errors[:MAX_ERRORS]])
        hidden = len(report.read_errors) - MAX_ERRORS
        if hidden > 0:
            lines.append(f"  ... and {hidden} more unreadable lines")
    out.write("\n".join(lines) + "\n")
