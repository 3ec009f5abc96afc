"""The HTML report's inline SVG charts: cumulative cost over time, and cost by model.

Both are drawn on the server side with fixed view boxes; the page's CSS colours them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .escape import esc
from .model import ModelCost, Report
from .text import format_cost, format_duration_ms, format_time_ns, format_usd

__all__ = ["cost_by_model_svg", "cumulative_cost_svg"]


def cumulative_cost_svg(report: Report) -> str:
    """The report's cumulative cost over time as a step line, one dot per priced call."""
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
        f'data-run-id="{esc(p.run_id)}" data-cost-usd="{p.cost_usd!r}" '
        f'data-cumulative-usd="{p.cumulative_usd!r}"><title>'
        f"{esc(format_time_ns(p.time_ns))}: {esc(p.model)} +${format_usd(p.cost_usd)} "
        f"(total ${format_usd(p.cumulative_usd)}, run {esc(p.run_id)})</title></circle>"
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
        f'<text class="axis" x="{left}" y="{height - 14}">{esc(format_time_ns(start))}</text>'
        f'<text class="axis" x="{width - right}" y="{height - 14}" text-anchor="end">'
        f"+{esc(format_duration_ms(span_ns / 1e6))}</text>"
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


def cost_by_model_svg(models: Sequence[ModelCost]) -> str:
    """Cost per model as horizontal bars, unpriced calls noted beside the value."""
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
        value = format_cost(model, "$")
        if model.unpriced_call_count:
            value += f" + {model.unpriced_call_count} unpriced"
        rows.append(
            f'<g class="model-bar{" unpriced" if model.unpriced_call_count else ""}" '
            f'data-provider="{esc(model.provider)}" data-model="{esc(model.model)}" '
            f'data-cost-usd="{model.cost_usd!r}" '
            f'data-unpriced-call-count="{model.unpriced_call_count}">'
            f"<title>{esc(label)}: {esc(value)} over {model.llm_call_count} calls</title>"
            f'<text class="label" x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" '
            f'text-anchor="end">{esc(_shorten(label, 38))}</text>'
            f'<rect x="{label_w}" y="{y + 5}" width="{max(bar_w, 1.5):.1f}" height="{row_h - 10}" '
            f'rx="3"/><text class="value" x="{label_w + bar_w + 6:.1f}" '
            f'y="{y + row_h / 2 + 4:.1f}">{esc(value)}</text></g>'
        )
    return (
        f'<svg id="cost-by-model-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="cost by model">{"".join(rows)}</svg>'
    )
