"""Session reports from trace files: spans grouped into sessions and runs, as text or HTML.

``build_report(spans)`` computes a ``Report`` (see ``build`` for where each figure comes
from); ``render_text`` writes it as tables and ``render_html`` as one self-contained page.
"""

from __future__ import annotations

from .build import build_report
from .html import render_html
from .model import (
    NO_SESSION,
    CostPoint,
    ModelCost,
    Report,
    RunSummary,
    SessionSummary,
    SpanNode,
    Totals,
)
from .spans import SpanLike, categorize
from .text import render_text

__all__ = [
    "NO_SESSION",
    "CostPoint",
    "ModelCost",
    "Report",
    "RunSummary",
    "SessionSummary",
    "SpanLike",
    "SpanNode",
    "Totals",
    "build_report",
    "categorize",
    "render_html",
    "render_text",
]
