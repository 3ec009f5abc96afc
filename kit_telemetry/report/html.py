"""The HTML report page: one self-contained page of summary cards, tables and run sections.

Everything is inline (CSS and a little JavaScript from ``assets``, SVG from ``charts``,
waterfalls from ``waterfall``); the page loads nothing from anywhere, so it can be mailed,
archived or opened offline. All figures are rendered on the server side. Every string
from the trace is untrusted and goes through ``escape``.

Stable hooks for tools and tests: each session is ``section.session[data-session-id]``,
each run ``section.run[data-run-id]`` carrying its totals as ``data-*`` attributes
(``data-cost-usd``, ``data-input-tokens``, ... named after the ``Totals`` figures), each
waterfall row ``.wf-row[data-span-key][data-category]``, the grand total
``#grand-total``, the charts ``#cumulative-cost`` and ``#cost-by-model``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from .assets import CSS, JS
from .charts import cost_by_model_svg, cumulative_cost_svg
from .escape import esc, script_json
from .model import ModelCost, Report, RunSummary, SessionSummary, Totals, figure
from .text import (
    FALLBACK_NOTE,
    INFERRED_NOTE,
    MAX_ERRORS,
    MODEL_COLUMNS,
    TOKEN_COLUMNS,
    TOTALS_COLUMNS,
    cell,
    format_cost,
    format_duration_ms,
    format_time_ns,
    format_tokens,
)
from .waterfall import CATEGORY_LABELS, span_data, waterfall

__all__ = ["render_html"]


def _data_name(key: str) -> str:
    return "data-" + key.replace("_", "-")


def _totals_data(totals: Totals) -> str:
    """The totals as ``data-*`` attributes, with exact (unrounded) values."""
    parts = []
    for column in TOTALS_COLUMNS:
        value = figure(totals, column.key)
        text = repr(float(value)) if isinstance(value, float) else str(value)
        parts.append(f'{_data_name(column.key)}="{esc(text)}"')
    parts.append(f'data-tool-names="{esc(json.dumps(list(totals.tool_names)))}"')
    return " ".join(parts)


# --- tables ---------------------------------------------------------------------------


def _totals_cells(totals: Totals) -> str:
    return "".join(
        f'<td class="num" data-field="{column.key}">{esc(cell(totals, column.key))}</td>'
        for column in TOTALS_COLUMNS
    )


def _totals_headers() -> str:
    return "".join(f'<th class="num">{esc(c.header)}</th>' for c in TOTALS_COLUMNS)


def _run_table(session: SessionSummary) -> str:
    rows = []
    for run in session.runs:
        status = "error" if run.error else "ok"
        rows.append(
            f'<tr class="run-row {status}" data-run-id="{esc(run.run_id)}" '
            f"{_totals_data(run.totals)}>"
            f'<td class="text"><a href="#run-{esc(_anchor(run))}">{esc(run.run_id)}</a></td>'
            f'<td class="text">{esc(run.agent_name)}</td>{_totals_cells(run.totals)}'
            f'<td data-field="stop_reason">{esc(run.stop_reason or "-")}</td></tr>'
        )
    rows.append(
        f'<tr class="total-row" {_totals_data(session.totals)}><th>total</th><td></td>'
        f"{_totals_cells(session.totals)}<td></td></tr>"
    )
    return (
        '<div class="scroll"><table class="runs"><thead><tr><th>run</th><th>agent</th>'
        f"{_totals_headers()}<th>stop reason</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _model_table(models: Sequence[ModelCost], table_id: str | None = None) -> str:
    head = "".join(
        f'<th class="{"num" if c.numeric else ""}">{esc(c.header)}</th>' for c in MODEL_COLUMNS
    )
    rows = []
    for model in models:
        cells = "".join(
            f'<td class="{"num" if c.numeric else "text"}" data-field="{c.key}">'
            f"{esc(cell(model, c.key))}</td>"
            for c in MODEL_COLUMNS
        )
        rows.append(
            f'<tr class="model-row" data-provider="{esc(model.provider)}" '
            f'data-model="{esc(model.model)}" data-cost-usd="{model.cost_usd!r}" '
            f'data-llm-call-count="{model.llm_call_count}" '
            f'data-unpriced-call-count="{model.unpriced_call_count}">{cells}</tr>'
        )
    id_attr = f' id="{table_id}"' if table_id else ""
    return (
        f'<div class="scroll"><table class="models"{id_attr}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _grand_table(report: Report) -> str:
    rows = [
        f'<tr class="session-row" data-session-id="{esc(s.session_id)}" '
        f'data-run-count="{len(s.runs)}" {_totals_data(s.totals)}>'
        f'<td class="text"><a href="#session-{esc(_session_anchor(s))}">'
        f"{esc(s.session_id)}</a></td>"
        f'<td class="num">{format_tokens(len(s.runs))}</td>{_totals_cells(s.totals)}</tr>'
        for s in report.sessions
    ]
    rows.append(
        f'<tr class="total-row" data-run-count="{len(report.runs)}" {_totals_data(report.totals)}>'
        f'<th>total</th><td class="num">{format_tokens(len(report.runs))}</td>'
        f"{_totals_cells(report.totals)}</tr>"
    )
    return (
        '<div class="scroll"><table class="sessions" id="grand-total" '
        f'data-session-count="{len(report.sessions)}" '
        f'data-run-count="{len(report.runs)}" {_totals_data(report.totals)}>'
        f'<thead><tr><th>session</th><th class="num">runs</th>{_totals_headers()}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


# --- sections -------------------------------------------------------------------------


def _anchor(run: RunSummary) -> str:
    # Run ids come from the trace; the anchor only needs to be unique and attribute-safe.
    return f"{run.trace_id}-{run.span_id or 'inferred'}"


def _session_anchor(session: SessionSummary) -> str:
    # A digest keeps anchors unique and attribute-safe whatever the session id holds.
    return hashlib.sha256(session.session_id.encode("utf-8", "replace")).hexdigest()[:12]


def _run_section(run: RunSummary) -> str:
    totals = run.totals
    facts = [
        ("agent", run.agent_name),
        ("started", format_time_ns(run.start_ns)),
        ("duration", format_duration_ms(totals.duration_ms)),
        ("stop reason", run.stop_reason or "-"),
        ("turns", format_tokens(totals.turn_count)),
        ("LLM calls", format_tokens(totals.llm_call_count)),
        ("budget-denied calls", format_tokens(totals.budget_denied_count)),
        ("tools", f"{totals.tool_call_count} ({totals.failed_tool_call_count} failed)"),
        ("tool names", ", ".join(totals.tool_names) or "-"),
        ("tokens", " · ".join(f"{c.header} {cell(totals, c.key)}" for c in TOKEN_COLUMNS)),
        (
            "cost",
            format_cost(totals, "$")
            + (f" + {totals.unpriced_call_count} unpriced" if totals.unpriced_call_count else ""),
        ),
    ]
    if run.error:
        facts.append(("error", run.error))
    if run.totals_source == "run attributes":
        facts.append(("note", FALLBACK_NOTE))
    if run.inferred:
        facts.append(("note", INFERRED_NOTE))
    for warning in run.warnings:
        facts.append(("warning", warning))
    facts_html = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    badge = '<span class="badge error">error</span>' if run.error else ""
    return (
        f'<section class="run{" is-error" if run.error else ""}" id="run-{esc(_anchor(run))}" '
        f'data-run-id="{esc(run.run_id)}" data-session-id="{esc(run.session_id)}" '
        f'data-agent="{esc(run.agent_name)}" data-stop-reason="{esc(run.stop_reason or "")}" '
        f'data-span-count="{len(run.spans)}" {_totals_data(totals)}>'
        f'<details open><summary><h3>run <span class="run-id">{esc(run.run_id)}</span> '
        f"<small>{esc(run.agent_name)} · {esc(format_duration_ms(totals.duration_ms))} · "
        f"{esc(format_cost(totals, '$'))}</small>{badge}</h3></summary>"
        f'<dl class="run-facts">{facts_html}</dl>{waterfall(run)}</details></section>'
    )


def _session_section(session: SessionSummary) -> str:
    runs = "".join(_run_section(run) for run in session.runs)
    notes = "".join(f'<li class="warning">{esc(w)}</li>' for w in session.warnings)
    wall_ms = max(0, session.end_ns - session.start_ns) / 1e6
    return (
        f'<section class="session" id="session-{esc(_session_anchor(session))}" '
        f'data-session-id="{esc(session.session_id)}" data-run-count="{len(session.runs)}" '
        f"{_totals_data(session.totals)}>"
        f"<h2>Session {esc(session.session_id)}</h2>"
        f'<p class="meta">{len(session.runs)} runs · {esc(format_time_ns(session.start_ns))} · '
        f"{esc(format_duration_ms(wall_ms))} wall clock</p>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + (_run_table(session) if session.runs else '<p class="empty">No runs in the file.</p>')
        + (f"<h4>Cost by model</h4>{_model_table(session.models)}" if session.models else "")
        + runs
        + "</section>"
    )


def _problems(report: Report) -> str:
    items = [f'<li class="read-error">{esc(e)}</li>' for e in report.read_errors[:MAX_ERRORS]]
    hidden = len(report.read_errors) - MAX_ERRORS
    if hidden > 0:
        items.append(f'<li class="read-error">... and {hidden} more unreadable lines</li>')
    items += [f'<li class="warning">{esc(w)}</li>' for w in report.warnings]
    if not items:
        return ""
    return (
        '<section id="problems"><h2>Problems</h2><p>Unreadable input is left out of every '
        "figure; warnings are recorded totals that disagree with the spans in the file.</p>"
        f"<ul>{''.join(items)}</ul></section>"
    )


def render_html(report: Report, *, source: str | None = None) -> str:
    """The report as one self-contained HTML page.

    Args:
        report: the report to render.
        source: the trace file's name, for the heading.
    """
    totals = report.totals
    cards = [
        ("sessions", format_tokens(len(report.sessions))),
        ("runs", format_tokens(len(report.runs))),
        ("LLM calls", format_tokens(totals.llm_call_count)),
        ("tool calls", f"{totals.tool_call_count} ({totals.failed_tool_call_count} failed)"),
        ("tokens", format_tokens(totals.total_tokens)),
        ("cost", format_cost(totals, "$")),
        ("unpriced calls", format_tokens(totals.unpriced_call_count)),
    ]
    cards_html = "".join(
        f'<div class="card"><div class="k">{esc(k)}</div><div class="v">{esc(v)}</div></div>'
        for k, v in cards
    )
    legend = (
        "".join(
            f'<span class="key cat-{cat}"><i></i>{esc(label)}</span>'
            for cat, label in CATEGORY_LABELS.items()
            if cat != "session"
        )
        + '<span class="key is-error"><i></i>error</span>'
    )
    title = "kit-telemetry report" + (f": {source}" if source else "")
    body = (
        f"<header><h1>{esc(title)}</h1>"
        f'<p class="meta">{report.span_count} spans read'
        + (f" · {len(report.read_errors)} unreadable lines" if report.read_errors else "")
        + f'</p><div class="cards">{cards_html}</div></header>'
        + _problems(report)
        + '<section id="charts"><figure id="cumulative-cost"><figcaption>Cumulative cost over '
        f"time</figcaption>{cumulative_cost_svg(report)}</figure>"
        '<figure id="cost-by-model"><figcaption>Cost by model</figcaption>'
        f"{cost_by_model_svg(report.models)}</figure></section>"
        '<section id="totals"><h2>Grand total</h2>'
        + _grand_table(report)
        + "<h4>Cost by model (all sessions)</h4>"
        + _model_table(report.models, "models-total")
        + f'</section><p class="legend">{legend}</p>'
        + "".join(_session_section(s) for s in report.sessions)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f'<body><main>{body}</main><aside id="span-details" hidden><button type="button" '
        'class="close" aria-label="close">&times;</button><h3></h3><dl></dl></aside>'
        '<script type="application/json" id="kit-span-data">'
        f"{script_json(span_data(report.runs))}</script><script>{JS}</script></body></html>\n"
    )
