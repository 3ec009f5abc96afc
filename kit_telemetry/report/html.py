"""The HTML report: one self-contained page with waterfalls, cost charts and tables.

Everything is inline (CSS, a little JavaScript, SVG charts); the page loads nothing from
anywhere, so it can be mailed, archived or opened offline. All figures are rendered on
the server side; the script only adds a span-details panel (click a waterfall row, or
open ``page.html#span=<trace id>-<span id>``).

Every string from the trace is untrusted: it is HTML-escaped in markup and attributes,
and the span data handed to the script is JSON with ``<``, ``>`` and ``&`` escaped, so a
model named ``</script><script>...`` stays text.

Stable hooks for tools and tests: each session is ``section.session[data-session-id]``,
each run ``section.run[data-run-id]`` carrying its totals as ``data-*`` attributes
(``data-cost-usd``, ``data-llm-call-count``, ... named after the ``Totals`` fields), each
waterfall row ``.wf-row[data-span-key][data-category]``, the grand total
``#grand-total``, the charts ``#cumulative-cost`` and ``#cost-by-model``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence

from .model import ModelCost, Report, RunSummary, SessionSummary, SpanNode, Totals
from .text import (
    FALLBACK_NOTE,
    INFERRED_NOTE,
    MAX_ERRORS,
    MODEL_COLUMNS,
    TOTALS_COLUMNS,
    cell,
    format_duration_ms,
    format_time_ns,
    format_tokens,
    format_usd,
)

_MAX_ATTRIBUTE_CHARS = 2000
_CATEGORY_LABELS = {
    "run": "agent run",
    "turn": "turn",
    "llm": "LLM call",
    "tool": "tool call",
    "other": "other span",
    "session": "session",
}


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _data_name(key: str) -> str:
    return "data-" + key.replace("_", "-")


def _totals_data(totals: Totals) -> str:
    """The totals as ``data-*`` attributes, with exact (unrounded) values."""
    parts = []
    for column in TOTALS_COLUMNS:
        value = getattr(totals, column.key)
        text = repr(float(value)) if isinstance(value, float) else str(value)
        parts.append(f'{_data_name(column.key)}="{_esc(text)}"')
    parts.append(f'data-tool-names="{_esc(json.dumps(list(totals.tool_names)))}"')
    return " ".join(parts)


def _script_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element whatever the strings hold."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _jsonable(value: object) -> object:
    if isinstance(value, str):
        if len(value) > _MAX_ATTRIBUTE_CHARS:
            # Captured prompts can be megabytes; the panel needs a glimpse, not the page weight.
            hidden = len(value) - _MAX_ATTRIBUTE_CHARS
            return f"{value[:_MAX_ATTRIBUTE_CHARS]}… ({hidden} more characters)"
        return value
    if isinstance(value, (bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray)):
        return "base64:" + base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


# --- tables ---------------------------------------------------------------------------


def _totals_cells(totals: Totals) -> str:
    return "".join(
        f'<td class="num" data-field="{column.key}">{_esc(cell(totals, column.key))}</td>'
        for column in TOTALS_COLUMNS
    )


def _totals_headers() -> str:
    return "".join(f'<th class="num">{_esc(c.header)}</th>' for c in TOTALS_COLUMNS)


def _run_table(session: SessionSummary) -> str:
    rows = []
    for run in session.runs:
        status = "error" if run.error else "ok"
        rows.append(
            f'<tr class="run-row {status}" data-run-id="{_esc(run.run_id)}" '
            f"{_totals_data(run.totals)}>"
            f'<td class="text"><a href="#run-{_esc(_anchor(run))}">{_esc(run.run_id)}</a></td>'
            f'<td class="text">{_esc(run.agent_name)}</td>{_totals_cells(run.totals)}'
            f'<td data-field="stop_reason">{_esc(run.stop_reason or "-")}</td></tr>'
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
        f'<th class="{"num" if c.numeric else ""}">{_esc(c.header)}</th>' for c in MODEL_COLUMNS
    )
    rows = []
    for model in models:
        cells = "".join(
            f'<td class="{"num" if c.numeric else "text"}" data-field="{c.key}">'
            f"{_esc(cell(model, c.key))}</td>"
            for c in MODEL_COLUMNS
        )
        rows.append(
            f'<tr class="model-row" data-provider="{_esc(model.provider)}" '
            f'data-model="{_esc(model.model)}" data-cost-usd="{model.cost_usd!r}" '
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
        f'<tr class="session-row" data-session-id="{_esc(s.session_id)}" '
        f'data-run-count="{len(s.runs)}" {_totals_data(s.totals)}>'
        f'<td class="text"><a href="#session-{_esc(_session_anchor(s))}">'
        f"{_esc(s.session_id)}</a></td>"
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


# --- charts ---------------------------------------------------------------------------


def _cumulative_cost_svg(report: Report) -> str:
    points = report.cost_timeline
    if not points:
        return '<p class="empty">No priced LLM calls: nothing to chart.</p>'
    width, height = 720, 240
    left, right, top, bottom = 84, 16, 14, 40
    start = min(s.start_ns for s in report.sessions)
    end = max(*(s.end_ns for s in report.sessions), points[-1].time_ns)
    span_ns = max(1, end - start)
    top_usd = points[-1].cumulative_usd or 1.0
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: int) -> float:
        return left + plot_w * (t - start) / span_ns

    def y(v: float) -> float:
        return top + plot_h * (1 - v / top_usd)

    path = [f"M{x(start):.1f},{y(0):.1f}"]
    for point in points:
        path.append(f"H{x(point.time_ns):.1f}V{y(point.cumulative_usd):.1f}")
    path.append(f"H{x(end):.1f}")
    dots = "".join(
        f'<circle class="cost-point" cx="{x(p.time_ns):.1f}" '
        f'cy="{y(p.cumulative_usd):.1f}" r="3.5" '
        f'data-run-id="{_esc(p.run_id)}" data-cost-usd="{p.cost_usd!r}" '
        f'data-cumulative-usd="{p.cumulative_usd!r}"><title>'
        f"{_esc(format_time_ns(p.time_ns))}: {_esc(p.model)} +${format_usd(p.cost_usd)} "
        f"(total ${format_usd(p.cumulative_usd)}, run {_esc(p.run_id)})</title></circle>"
        for p in points
    )
    grid = []
    for i in range(5):
        value = top_usd * i / 4
        gy = y(value)
        grid.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{gy:.1f}" y2="{gy:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{gy + 4:.1f}" text-anchor="end">'
            f"${format_usd(value)}</text>"
        )
    axis = (
        f'<text class="axis" x="{left}" y="{height - 14}">{_esc(format_time_ns(start))}</text>'
        f'<text class="axis" x="{width - right}" y="{height - 14}" text-anchor="end">'
        f"+{_esc(format_duration_ms(span_ns / 1e6))}</text>"
    )
    return (
        f'<svg id="cumulative-cost-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cumulative cost over time" data-total-usd="{points[-1].cumulative_usd!r}" '
        f'data-point-count="{len(points)}">{"".join(grid)}'
        f'<line class="axis-line" x1="{left}" x2="{width - right}" '
        f'y1="{y(0):.1f}" y2="{y(0):.1f}"/>'
        f'<path class="cost-line" d="{"".join(path)}"/>{dots}{axis}</svg>'
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cost_by_model_svg(models: Sequence[ModelCost]) -> str:
    if not models:
        return '<p class="empty">No LLM calls.</p>'
    width, row_h, label_w, value_w = 720, 30, 260, 170
    height = row_h * len(models) + 8
    bar_room = width - label_w - value_w
    top_usd = max(m.cost_usd for m in models) or 1.0
    rows = []
    for i, model in enumerate(models):
        label = f"{model.provider} / {model.model}" if model.provider != "-" else model.model
        y = 4 + i * row_h
        bar_w = bar_room * model.cost_usd / top_usd
        value = f"${format_usd(model.cost_usd)}"
        if model.unpriced_call_count:
            value += f" + {model.unpriced_call_count} unpriced"
        rows.append(
            f'<g class="model-bar{" unpriced" if model.unpriced_call_count else ""}" '
            f'data-provider="{_esc(model.provider)}" data-model="{_esc(model.model)}" '
            f'data-cost-usd="{model.cost_usd!r}" '
            f'data-unpriced-call-count="{model.unpriced_call_count}">'
            f"<title>{_esc(label)}: {_esc(value)} over {model.llm_call_count} calls</title>"
            f'<text class="label" x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{_esc(_shorten(label, 38))}</text>'
            f'<rect x="{label_w}" y="{y + 5}" width="{max(bar_w, 1.5):.1f}" height="{row_h - 10}" '
            f'rx="3"/><text class="value" x="{label_w + bar_w + 6:.1f}" '
            f'y="{y + row_h / 2 + 4:.1f}">{_esc(value)}</text></g>'
        )
    return (
        f'<svg id="cost-by-model-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cost by model">{"".join(rows)}</svg>'
    )


# --- waterfall ------------------------------------------------------------------------


def _span_key(run: RunSummary, node: SpanNode) -> str:
    return f"{run.trace_id}-{node.span_id}"


def _anchor(run: RunSummary) -> str:
    # Run ids come from the trace; the anchor only needs to be unique and attribute-safe.
    return f"{run.trace_id}-{run.span_id or 'inferred'}"


def _session_anchor(session: SessionSummary) -> str:
    # A digest keeps anchors unique and attribute-safe whatever the session id holds.
    return hashlib.sha256(session.session_id.encode("utf-8", "replace")).hexdigest()[:12]


def _waterfall(run: RunSummary) -> str:
    start = run.start_ns
    span_ns = max(1, run.end_ns - run.start_ns)
    ticks = "".join(
        f'<span class="tick" style="left:{pct}%">'
        f"{_esc(format_duration_ms(span_ns * pct / 100 / 1e6))}</span>"
        for pct in (0, 25, 50, 75, 100)
    )
    rows = [
        f'<div class="wf-axis"><div class="wf-name"></div><div class="wf-track">{ticks}</div>'
        '<div class="wf-time"></div></div>'
    ]
    for node in run.spans:
        left = min(100.0, max(0.0, 100 * (node.start_ns - start) / span_ns))
        width = min(100.0 - left, max(0.0, 100 * (node.end_ns - node.start_ns) / span_ns))
        error_cls = " is-error" if node.is_error else ""
        marker = '<span class="err-mark" title="error">✕</span>' if node.is_error else ""
        kind = _CATEGORY_LABELS[node.category]
        tip = f"{node.name} ({kind}, {format_duration_ms(node.duration_ms)})"
        if node.is_error:
            tip += f" error: {node.status_message or 'failed'}"
        rows.append(
            f'<div class="wf-row cat-{node.category}{error_cls}" tabindex="0" role="button" '
            f'data-span-key="{_esc(_span_key(run, node))}" data-category="{node.category}" '
            f'data-depth="{node.depth}" data-error="{str(node.is_error).lower()}" '
            f'data-offset-ms="{(node.start_ns - start) / 1e6!r}" '
            f'data-duration-ms="{node.duration_ms!r}" title="{_esc(tip)}">'
            f'<div class="wf-name" style="padding-left:{6 + 16 * node.depth}px">{marker}'
            f"{_esc(node.name)}</div>"
            f'<div class="wf-track"><div class="wf-bar" style="left:{left:.3f}%;'
            f'width:max({width:.3f}%,2px)"></div></div>'
            f'<div class="wf-time">{_esc(format_duration_ms(node.duration_ms))}</div></div>'
        )
    return f'<div class="waterfall" data-run-id="{_esc(run.run_id)}">{"".join(rows)}</div>'


def _span_data(runs: Iterable[RunSummary]) -> dict[str, object]:
    data: dict[str, object] = {}
    for run in runs:
        for node in run.spans:
            data[_span_key(run, node)] = {
                "name": node.name,
                "category": _CATEGORY_LABELS[node.category],
                "run": run.run_id,
                "offset_ms": (node.start_ns - run.start_ns) / 1e6,
                "duration_ms": node.duration_ms,
                "error": node.status_message or ("error" if node.is_error else None),
                "attributes": _jsonable(node.attributes),
            }
    return data


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
        (
            "tokens",
            f"input {format_tokens(totals.input_tokens)} · output "
            f"{format_tokens(totals.output_tokens)} · cache read "
            f"{format_tokens(totals.cache_read_tokens)} · cache write "
            f"{format_tokens(totals.cache_write_tokens)} · reasoning "
            f"{format_tokens(totals.reasoning_tokens)}",
        ),
        (
            "cost",
            f"${format_usd(totals.cost_usd)}"
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
    facts_html = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in facts)
    badge = '<span class="badge error">error</span>' if run.error else ""
    return (
        f'<section class="run{" is-error" if run.error else ""}" id="run-{_esc(_anchor(run))}" '
        f'data-run-id="{_esc(run.run_id)}" data-session-id="{_esc(run.session_id)}" '
        f'data-agent="{_esc(run.agent_name)}" data-stop-reason="{_esc(run.stop_reason or "")}" '
        f'data-span-count="{len(run.spans)}" {_totals_data(totals)}>'
        f'<details open><summary><h3>run <span class="run-id">{_esc(run.run_id)}</span> '
        f"<small>{_esc(run.agent_name)} · {_esc(format_duration_ms(totals.duration_ms))} · "
        f"${_esc(format_usd(totals.cost_usd))}</small>{badge}</h3></summary>"
        f'<dl class="run-facts">{facts_html}</dl>{_waterfall(run)}</details></section>'
    )


def _session_section(session: SessionSummary) -> str:
    runs = "".join(_run_section(run) for run in session.runs)
    notes = "".join(f'<li class="warning">{_esc(w)}</li>' for w in session.warnings)
    wall_ms = max(0, session.end_ns - session.start_ns) / 1e6
    return (
        f'<section class="session" id="session-{_esc(_session_anchor(session))}" '
        f'data-session-id="{_esc(session.session_id)}" data-run-count="{len(session.runs)}" '
        f"{_totals_data(session.totals)}>"
        f"<h2>Session {_esc(session.session_id)}</h2>"
        f'<p class="meta">{len(session.runs)} runs · {_esc(format_time_ns(session.start_ns))} · '
        f"{_esc(format_duration_ms(wall_ms))} wall clock</p>"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + (_run_table(session) if session.runs else '<p class="empty">No runs in the file.</p>')
        + (f"<h4>Cost by model</h4>{_model_table(session.models)}" if session.models else "")
        + runs
        + "</section>"
    )


def _problems(report: Report) -> str:
    items = [f'<li class="read-error">{_esc(e)}</li>' for e in report.read_errors[:MAX_ERRORS]]
    hidden = len(report.read_errors) - MAX_ERRORS
    if hidden > 0:
        items.append(f'<li class="read-error">... and {hidden} more unreadable lines</li>')
    items += [f'<li class="warning">{_esc(w)}</li>' for w in report.warnings]
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
        ("cost", f"${format_usd(totals.cost_usd)}"),
        ("unpriced calls", format_tokens(totals.unpriced_call_count)),
    ]
    cards_html = "".join(
        f'<div class="card"><div class="k">{_esc(k)}</div><div class="v">{_esc(v)}</div></div>'
        for k, v in cards
    )
    legend = (
        "".join(
            f'<span class="key cat-{cat}"><i></i>{_esc(label)}</span>'
            for cat, label in _CATEGORY_LABELS.items()
            if cat != "session"
        )
        + '<span class="key is-error"><i></i>error</span>'
    )
    title = "kit-telemetry report" + (f": {source}" if source else "")
    body = (
        f"<header><h1>{_esc(title)}</h1>"
        f'<p class="meta">{report.span_count} spans read'
        + (f" · {len(report.read_errors)} unreadable lines" if report.read_errors else "")
        + f'</p><div class="cards">{cards_html}</div></header>'
        + _problems(report)
        + '<section id="charts"><figure id="cumulative-cost"><figcaption>Cumulative cost over '
        f"time</figcaption>{_cumulative_cost_svg(report)}</figure>"
        '<figure id="cost-by-model"><figcaption>Cost by model</figcaption>'
        f"{_cost_by_model_svg(report.models)}</figure></section>"
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
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head>"
        f'<body><main>{body}</main><aside id="span-details" hidden><button type="button" '
        'class="close" aria-label="close">&times;</button><h3></h3><dl></dl></aside>'
        '<script type="application/json" id="kit-span-data">'
        f"{_script_json(_span_data(report.runs))}</script><script>{_JS}</script></body></html>\n"
    )


_CSS = """
:root{--run:#7c5cff;--turn:#9aa3b2;--llm:#2f7ff5;--tool:#16a06a;--other:#d4a017;--err:#e0383e;
--ink:#1d2330;--mute:#667085;--line:#e4e7ec;--bg:#f7f8fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
background:var(--bg)}
main{max-width:1240px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px;word-break:break-all}
h2{font-size:18px;margin:28px 0 6px}
h3{font-size:15px;margin:0;display:inline}
h4{margin:14px 0 6px;font-size:13px;color:var(--mute);text-transform:uppercase;letter-spacing:.04em}
.meta{color:var(--mute);margin:0 0 10px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 14px;
min-width:120px}
.card .k{color:var(--mute);font-size:12px}.card .v{font-size:18px;font-weight:600}
#charts{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin:16px 0}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px}
figcaption{font-weight:600;margin-bottom:6px}
svg{width:100%;height:auto;display:block}
svg text{font-size:11px;fill:var(--mute)}
svg .grid{stroke:var(--line)}svg .axis-line{stroke:#98a2b3}
svg .cost-line{fill:none;stroke:var(--llm);stroke-width:2}
svg .cost-point{fill:#fff;stroke:var(--llm);stroke-width:2}
svg .model-bar rect{fill:var(--llm)}svg .model-bar.unpriced rect{fill:#c2c8d2}
svg .model-bar .label{fill:var(--ink)}
.scroll{overflow-x:auto;margin:4px 0}
table{border-collapse:collapse;background:#fff;border:1px solid var(--line);font-size:12.5px;
min-width:100%}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
td.text{white-space:normal;overflow-wrap:anywhere;min-width:130px;max-width:300px}
thead th{background:#f0f2f5;font-weight:600;white-space:normal;vertical-align:bottom}
.num{text-align:right;font-variant-numeric:tabular-nums}
tr.total-row{font-weight:600;background:#fafbfc}
tr.run-row.error td:first-child{border-left:3px solid var(--err)}
.session{margin-top:26px;padding-top:8px;border-top:2px solid var(--line)}
.run{background:#fff;border:1px solid var(--line);border-radius:8px;margin:12px 0;padding:8px 12px}
.run.is-error{border-left:4px solid var(--err)}
.run summary{cursor:pointer;padding:4px 0}
.run small{color:var(--mute);font-weight:400;margin-left:6px}
.badge{display:inline-block;margin-left:8px;padding:0 6px;border-radius:4px;font-size:11px;
color:#fff;background:var(--err);vertical-align:middle}
.run-facts{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 10px;
font-size:12.5px}
.run-facts dt{color:var(--mute)}.run-facts dd{margin:0;word-break:break-all}
.waterfall{border:1px solid var(--line);border-radius:6px;overflow:hidden;font-size:12px}
.wf-row,.wf-axis{display:grid;grid-template-columns:300px 1fr 72px;align-items:center;
min-height:22px;border-bottom:1px solid #f0f2f5}
.wf-row{cursor:pointer}.wf-row:hover,.wf-row.selected{background:#eef4ff}
.wf-name{overflow:hidden;text-overflow:ellipsis;white-space:nowrap;padding-right:6px}
.wf-track{position:relative;height:22px;margin:0 8px}
.wf-bar{position:absolute;top:5px;height:12px;border-radius:3px;background:var(--other)}
.wf-time{text-align:right;padding-right:8px;color:var(--mute);font-variant-numeric:tabular-nums}
.wf-axis{background:#f7f8fa;color:var(--mute);font-size:11px}
.wf-axis .tick{position:absolute;top:4px;transform:translateX(-50%);white-space:nowrap}
.wf-axis .tick:first-child{transform:none}.wf-axis .tick:last-child{transform:translateX(-100%)}
.cat-run .wf-bar,.key.cat-run i{background:var(--run)}
.cat-turn .wf-bar,.key.cat-turn i{background:var(--turn)}
.cat-llm .wf-bar,.key.cat-llm i{background:var(--llm)}
.cat-tool .wf-bar,.key.cat-tool i{background:var(--tool)}
.cat-other .wf-bar,.key.cat-other i{background:var(--other)}
.wf-row.is-error .wf-bar{outline:2px solid var(--err);outline-offset:1px;
background-image:repeating-linear-gradient(45deg,transparent 0 4px,rgba(224,56,62,.55) 4px 7px)}
.key.is-error i{background:#fff;outline:2px solid var(--err)}
.err-mark{color:var(--err);font-weight:700;margin-right:4px}
.legend{margin:18px 0 0;color:var(--mute)}
.key{margin-right:14px;white-space:nowrap}
.key i{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:5px;
vertical-align:-1px}
#problems ul,.notes{background:#fff5f5;border:1px solid #f5c2c4;border-radius:8px;
padding:8px 8px 8px 28px;word-break:break-all}
.empty{color:var(--mute)}
#span-details{position:fixed;right:16px;bottom:16px;width:420px;max-height:60vh;overflow:auto;
background:#fff;border:1px solid #98a2b3;border-radius:8px;box-shadow:0 8px 24px rgba(0,0,0,.15);
padding:10px 14px;font-size:12px}
#span-details dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 10px;margin:8px 0 0}
#span-details dt{color:var(--mute)}#span-details dd{margin:0;word-break:break-all}
#span-details .close{float:right;border:0;background:none;font-size:18px;cursor:pointer}
@media (max-width:900px){#charts{grid-template-columns:1fr}
.wf-row,.wf-axis{grid-template-columns:180px 1fr 60px}}
"""

# Builds the details panel with textContent only: attribute values are trace data.
_JS = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("kit-span-data").textContent);
  var panel = document.getElementById("span-details");
  var rows = document.querySelectorAll(".wf-row");
  function fmt(ms) {
    return ms < 1000 ? ms.toFixed(0) + " ms" : (ms / 1000).toFixed(2) + " s";
  }
  function add(dl, key, value) {
    var dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = typeof value === "string" ? value : JSON.stringify(value);
    dl.appendChild(dt);
    dl.appendChild(dd);
  }
  function select(key, scroll) {
    var span = Object.prototype.hasOwnProperty.call(data, key) ? data[key] : null;
    if (!span) { return false; }
    rows.forEach(function (row) {
      row.classList.toggle("selected", row.getAttribute("data-span-key") === key);
      if (scroll && row.getAttribute("data-span-key") === key) {
        row.scrollIntoView({block: "center"});
      }
    });
    panel.querySelector("h3").textContent = span.name;
    var dl = panel.querySelector("dl");
    dl.textContent = "";
    add(dl, "kind", span.category);
    add(dl, "run", span.run);
    add(dl, "starts at", "+" + fmt(span.offset_ms));
    add(dl, "duration", fmt(span.duration_ms));
    if (span.error) { add(dl, "error", span.error); }
    Object.keys(span.attributes).sort().forEach(function (name) {
      add(dl, name, span.attributes[name]);
    });
    panel.setAttribute("data-span-key", key);
    panel.hidden = false;
    return true;
  }
  rows.forEach(function (row) {
    function pick() {
      var key = row.getAttribute("data-span-key");
      if (select(key, false) && history.replaceState) {
        history.replaceState(null, "", "#span=" + key);
      }
    }
    row.addEventListener("click", pick);
    row.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(); }
    });
  });
  panel.querySelector(".close").addEventListener("click", function () {
    panel.hidden = true;
    rows.forEach(function (row) { row.classList.remove("selected"); });
  });
  var match = /^#span=([0-9a-zA-Z_-]+)$/.exec(location.hash);
  if (match) { select(match[1], true); }
  document.documentElement.setAttribute("data-js", "ready");
})();
"""
