"""The report's data types: totals, cost per model, runs, sessions and the report itself.

Every type is a frozen value computed once by ``build.build_report`` and read by the text
and HTML renderers. The roll-ups at the end (``merge_models``, ``assemble_report``) combine
summaries already made; how figures are computed from spans is ``build``'s business.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from ..tokens import TOKEN_KINDS, TokenUsage

SpanCategory = Literal["run", "turn", "llm", "tool", "session", "other"]
TotalsSource = Literal["spans", "run attributes"]

NO_SESSION = "(no session)"
"""The session id shown for runs whose spans carry no ``gen_ai.conversation.id``."""

UNKNOWN = "(unknown)"
RUN_TOTALS_MODEL = "(run totals)"
"""The model row standing for calls known only from a run span's ``kit.run.*`` totals."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Counts, tokens, cost and time of a run, a session or a whole report.

    ``tokens`` holds the disjoint token kinds (see ``TokenUsage``). ``cost_usd`` sums the
    priced calls only. For a session or a report, ``duration_ms`` is the sum of its runs'
    durations (time spent in runs).
    """

    turn_count: int = 0
    llm_call_count: int = 0
    budget_denied_count: int = 0
    failed_llm_call_count: int = 0
    tool_call_count: int = 0
    failed_tool_call_count: int = 0
    tool_names: tuple[str, ...] = ()
    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    unpriced_call_count: int = 0
    duration_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Every billable token: the disjoint input kinds plus output."""
        return self.tokens.total

    @property
    def cost_complete(self) -> bool:
        """Every call was priced: ``cost_usd`` is the whole cost, not a lower bound."""
        return self.unpriced_call_count == 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            turn_count=self.turn_count + other.turn_count,
            llm_call_count=self.llm_call_count + other.llm_call_count,
            budget_denied_count=self.budget_denied_count + other.budget_denied_count,
            failed_llm_call_count=self.failed_llm_call_count + other.failed_llm_call_count,
            tool_call_count=self.tool_call_count + other.tool_call_count,
            failed_tool_call_count=self.failed_tool_call_count + other.failed_tool_call_count,
            tool_names=self.tool_names + other.tool_names,
            tokens=self.tokens + other.tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_call_count=self.unpriced_call_count + other.unpriced_call_count,
            duration_ms=self.duration_ms + other.duration_ms,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelCost:
    """What one model (of one provider) was asked and cost."""

    provider: str
    model: str
    llm_call_count: int = 0
    budget_denied_count: int = 0
    tokens: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    unpriced_call_count: int = 0

    def __add__(self, other: ModelCost) -> ModelCost:
        return replace(
            self,
            llm_call_count=self.llm_call_count + other.llm_call_count,
            budget_denied_count=self.budget_denied_count + other.budget_denied_count,
            tokens=self.tokens + other.tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_call_count=self.unpriced_call_count + other.unpriced_call_count,
        )


def figure(row: Totals | ModelCost, name: str) -> Any:
    """One figure of a totals or model row by its flat name; token kinds come from ``tokens``.

    Tables, ``data-*`` attributes and the ``kit.*`` cross-check name figures as events and
    ``kit.run.*`` attributes do (``input_tokens``, ``cost_usd``), hence the flat names.
    """
    return getattr(row.tokens, name) if name in TOKEN_KINDS else getattr(row, name)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanNode:
    """One row of a run's waterfall: a span with its depth below the run."""

    span_id: str
    parent_span_id: str | None
    name: str
    category: SpanCategory
    depth: int
    start_ns: int
    end_ns: int
    is_error: bool
    status_message: str | None = None
    attributes: Mapping[str, object] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float:
        """The span's length in milliseconds (never negative)."""
        return max(0, self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class CostPoint:
    """One priced LLM call on the cost-over-time line (at the call's end)."""

    time_ns: int
    cost_usd: float
    cumulative_usd: float
    run_id: str
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """One agent run: its identity, outcome, totals, cost per model and span tree."""

    run_id: str
    trace_id: str
    span_id: str | None
    agent_name: str
    session_id: str
    start_ns: int
    end_ns: int
    stop_reason: str | None
    error: str | None
    totals: Totals
    totals_source: TotalsSource
    models: tuple[ModelCost, ...]
    spans: tuple[SpanNode, ...]
    cost_points: tuple[CostPoint, ...] = ()
    """The run's priced calls in end order; ``cumulative_usd`` runs within the run."""
    warnings: tuple[str, ...] = ()
    """Disagreements between the run span's ``kit.run.*`` totals and its child spans."""
    inferred: bool = False
    """True when no ``invoke_agent`` span was found and the run stands for a trace's calls."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionSummary:
    """One session: its runs in start order, with totals and cost per model."""

    session_id: str
    start_ns: int
    end_ns: int
    runs: tuple[RunSummary, ...]
    totals: Totals
    models: tuple[ModelCost, ...]
    warnings: tuple[str, ...] = ()
    """Disagreements between the ``kit.session.end`` span's totals and the runs in the file."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Everything a report shows, computed once and rendered as text or HTML."""

    sessions: tuple[SessionSummary, ...]
    totals: Totals
    models: tuple[ModelCost, ...]
    cost_timeline: tuple[CostPoint, ...]
    read_errors: tuple[str, ...] = ()
    span_count: int = 0

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every cross-check disagreement, sessions first, then their runs."""
        return tuple(
            w
            for s in self.sessions
            for w in (*s.warnings, *(w for r in s.runs for w in r.warnings))
        )

    @property
    def runs(self) -> tuple[RunSummary, ...]:
        """Every run of every session, in session order."""
        return tuple(run for session in self.sessions for run in session.runs)

    def session(self, session_id: str) -> SessionSummary | None:
        """The session with that id, or ``None`` when the report has none."""
        for session in self.sessions:
            if session.session_id == session_id:
                return session
        return None

    def only_session(self, session_id: str) -> Report:
        """This report narrowed to one session.

        Raises:
            KeyError: the report has no session with that id.
        """
        session = self.session(session_id)
        if session is None:
            raise KeyError(session_id)
        return assemble_report(
            [session],
            read_errors=self.read_errors,
            span_count=sum(len(run.spans) for run in session.runs),
        )


# --- roll-ups -------------------------------------------------------------------------


def sorted_models(models: Iterable[ModelCost]) -> tuple[ModelCost, ...]:
    """Model rows dearest first, then by provider and model."""
    return tuple(sorted(models, key=lambda m: (-m.cost_usd, m.provider, m.model)))


def merge_models(groups: Iterable[Iterable[ModelCost]]) -> tuple[ModelCost, ...]:
    """One row per provider and model, summed across the groups; dearest first."""
    merged: dict[tuple[str, str], ModelCost] = {}
    for group in groups:
        for row in group:
            key = (row.provider, row.model)
            merged[key] = merged[key] + row if key in merged else row
    return sorted_models(merged.values())


def assemble_report(
    sessions: Sequence[SessionSummary], *, read_errors: tuple[str, ...], span_count: int
) -> Report:
    """A report of these sessions: their totals, their models, one cost timeline across runs."""
    ordered = sorted(
        (p for s in sessions for r in s.runs for p in r.cost_points),
        key=lambda p: (p.time_ns, p.run_id),
    )
    timeline: list[CostPoint] = []
    running = 0.0
    for point in ordered:
        running += point.cost_usd
        timeline.append(replace(point, cumulative_usd=running))
    return Report(
        sessions=tuple(sessions),
        totals=sum((s.totals for s in sessions), Totals()),
        models=merge_models(s.models for s in sessions),
        cost_timeline=tuple(timeline),
        read_errors=read_errors,
        span_count=span_count,
    )
