"""The HTML report's span waterfall: one row per span of a run, on the run's time axis.

Each row is ``.wf-row[data-span-key][data-category]``; :func:`span_data` is the JSON the
page's details panel reads for a row, keyed the same way, with long attribute values cut
short.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping

from .escape import esc
from .model import RunSummary, SpanNode
from .text import format_duration_ms

__all__ = ["CATEGORY_LABELS", "span_data", "waterfall"]

_MAX_ATTRIBUTE_CHARS = 2000
CATEGORY_LABELS = {
    "run": "agent run",
    "turn": "turn",
    "llm": "LLM call",
    "tool": "tool call",
    "other": "other span",
    "session": "session",
}


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


def _span_key(run: RunSummary, node: SpanNode) -> str:
    return f"{run.trace_id}-{node.span_id}"


def waterfall(run: RunSummary) -> str:
    """The run's spans as waterfall rows under a time axis, one row per span."""
    start = run.start_ns
    span_ns = max(1, run.end_ns - run.start_ns)
    ticks = "".join(
        f'<span class="tick" style="left:{pct}%">'
        f"{esc(format_duration_ms(span_ns * pct / 100 / 1e6))}</span>"
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
        kind = CATEGORY_LABELS[node.category]
        tip = f"{node.name} ({kind}, {format_duration_ms(node.duration_ms)})"
        if node.is_error:
            tip += f" error: {node.status_message or 'failed'}"
        rows.append(
            f'<div class="wf-row cat-{node.category}{error_cls}" tabindex="0" role="button" '
            f'data-span-key="{esc(_span_key(run, node))}" data-category="{node.category}" '
            f'data-depth="{node.depth}" data-error="{str(node.is_error).lower()}" '
            f'data-offset-ms="{(node.start_ns - start) / 1e6!r}" '
            f'data-duration-ms="{node.duration_ms!r}" title="{esc(tip)}">'
            f'<div class="wf-name" style="padding-left:{6 + 16 * node.depth}px">{marker}'
            f"{esc(node.name)}</div>"
            f'<div class="wf-track"><div class="wf-bar" style="left:{left:.3f}%;'
            f'width:max({width:.3f}%,2px)"></div></div>'
            f'<div class="wf-time">{esc(format_duration_ms(node.duration_ms))}</div></div>'
        )
    return f'<div class="waterfall" data-run-id="{esc(run.run_id)}">{"".join(rows)}</div>'


def span_data(runs: Iterable[RunSummary]) -> dict[str, object]:
    """What the details panel shows for each waterfall row, keyed by ``data-span-key``."""
    data: dict[str, object] = {}
    for run in runs:
        for node in run.spans:
            data[_span_key(run, node)] = {
                "name": node.name,
                "category": CATEGORY_LABELS[node.category],
                "run": run.run_id,
                "offset_ms": (node.start_ns - run.start_ns) / 1e6,
                "duration_ms": node.duration_ms,
                "error": node.status_message or ("error" if node.is_error else None),
                "attributes": _jsonable(node.attributes),
            }
    return data
