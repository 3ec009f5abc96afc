"""Building a report: finished spans grouped into sessions and runs, with their totals.

Where the numbers come from (the one decision every figure in a report rests on):

* **Recomputed from child spans.** A run's totals are summed from the ``chat``/``execute_tool``
  and ``turn`` spans below its ``invoke_agent`` span, exactly as the aggregator counts them
  (disjoint token kinds, budget-denied calls left out of ``llm_call_count``, calls without
  ``kit.usage.cost_usd`` counted as unpriced, one turn per LLM call when there are no turn
  spans). This works for spans of any GenAI instrumentation, not only kit-telemetry's.
* **``kit.run.*`` as a cross-check.** When the run span also carries kit-telemetry's totals,
  each is compared with the recomputed value; a disagreement (usually spans lost from the
  file, or sampled out before export) becomes a warning in the report.
* **``kit.run.*`` as a fallback.** A run span with no call or turn spans below it in the file
  but with ``kit.run.*`` totals reports those totals (``RunSummary.totals_source`` says so).

LLM and tool spans outside any ``invoke_agent`` span are grouped per trace into an
*inferred* run, so nothing in the file is left out of the totals.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from .. import semconv, tracing
from ..aggregation.ports import Pricer
from .model import (
    NO_SESSION,
    RUN_TOTALS_MODEL,
    UNKNOWN,
    CostPoint,
    ModelCost,
    Report,
    RunSummary,
    SessionSummary,
    SpanNode,
    Totals,
    TotalsSource,
    assemble_report,
    merge_models,
)
from .spans import (
    SpanLike,
    attr_number,
    attr_text,
    categorize,
    error_text,
    has_usage,
    is_error,
    is_kit_call,
)
from .totals import compute_totals, cross_check, recorded_totals, totals_from_recorded

# --- the span forest ------------------------------------------------------------------

_Key = tuple[str, str]


class _Forest:
    """The file's spans indexed by id and by parent, for walking trees."""

    def __init__(self, spans: Iterable[SpanLike]) -> None:
        self.spans: dict[_Key, SpanLike] = {}
        for span in spans:
            # The same span exported twice (a retried batch) must count once.
            self.spans.setdefault((span.trace_id, span.span_id), span)
        self.children: dict[_Key, list[SpanLike]] = defaultdict(list)
        for span in self.spans.values():
            if span.parent_span_id:
                self.children[(span.trace_id, span.parent_span_id)].append(span)
        for kids in self.children.values():
            kids.sort(key=lambda s: (s.start_ns, s.end_ns, s.span_id))
        self.category = {key: categorize(span) for key, span in self.spans.items()}

    def parent(self, span: SpanLike) -> SpanLike | None:
        if not span.parent_span_id:
            return None
        return self.spans.get((span.trace_id, span.parent_span_id))

    def has_run_ancestor(self, span: SpanLike) -> bool:
        seen: set[str] = set()
        node = self.parent(span)
        while node is not None and node.span_id not in seen:
            seen.add(node.span_id)
            if self.category[(node.trace_id, node.span_id)] == "run":
                return True
            node = self.parent(node)
        return False

    def llm_ancestors(self, span: SpanLike) -> list[SpanLike]:
        """The LLM spans around ``span``, innermost first, up to the nearest run span."""
        found: list[SpanLike] = []
        seen: set[str] = set()
        node = self.parent(span)
        while node is not None and node.span_id not in seen:
            seen.add(node.span_id)
            category = self.category[(node.trace_id, node.span_id)]
            if category == "run":
                break
            if category == "llm":
                found.append(node)
            node = self.parent(node)
        return found

    def same_calls(self, spans: Iterable[SpanLike]) -> set[_Key]:
        """LLM spans that describe a call another LLM span around or inside them counts.

        The aggregator's rule: kit-telemetry's own LLM span counts and the spans of other
        code inside it do not; otherwise the innermost span with usage counts, and an inner
        span without usage leaves the count to the span around it.
        """
        llm = [s for s in spans if self.category[(s.trace_id, s.span_id)] == "llm"]
        usage_below: set[_Key] = set()  # LLM spans with a counting span with usage inside
        skipped: set[_Key] = set()
        for span in llm:
            ancestors = self.llm_ancestors(span)
            key = (span.trace_id, span.span_id)
            if not is_kit_call(span) and any(is_kit_call(a) for a in ancestors):
                skipped.add(key)
                continue
            if has_usage(span) or is_kit_call(span):
                usage_below.update((a.trace_id, a.span_id) for a in ancestors)
            elif ancestors:
                skipped.add(key)
        for span in llm:
            key = (span.trace_id, span.span_id)
            if key in usage_below and not is_kit_call(span):
                skipped.add(key)
        return skipped

    def walk(self, roots: Sequence[SpanLike]) -> list[tuple[SpanLike, int]]:
        """Depth-first, children in start order; each span with its depth."""
        out: list[tuple[SpanLike, int]] = []
        seen: set[_Key] = set()
        stack = [(root, 0) for root in reversed(roots)]
        while stack:
            span, depth = stack.pop()
            key = (span.trace_id, span.span_id)
            if key in seen:  # a parent cycle in a corrupt file must not loop forever
                continue
            seen.add(key)
            out.append((span, depth))
            for child in reversed(self.children.get(key, [])):
                stack.append((child, depth + 1))
        return out


def _node(forest: _Forest, span: SpanLike, depth: int) -> SpanNode:
    return SpanNode(
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        name=span.name,
        category=forest.category[(span.trace_id, span.span_id)],
        depth=depth,
        start_ns=span.start_ns,
        end_ns=span.end_ns,
        is_error=is_error(span),
        status_message=span.status_message or None,
        attributes=dict(span.attributes),
    )


# --- building -------------------------------------------------------------------------


def build_report(
    spans: Iterable[SpanLike], *, read_errors: Sequence[str] = (), pricer: Pricer | None = None
) -> Report:
    """Group spans into sessions and runs and compute every total of the report.

    Args:
        spans: finished spans in any order (children may come before their parents).
        read_errors: messages about input that could not be read, carried into the report.
        pricer: prices the LLM calls of other instrumentations, which carry no
            ``kit.usage.cost_usd`` (None: they count as unpriced).
    """
    forest = _Forest(spans)
    runs: list[RunSummary] = []
    claimed: set[_Key] = set()
    run_roots = [
        span
        for key, span in forest.spans.items()
        if forest.category[key] == "run" and not forest.has_run_ancestor(span)
    ]
    for root in run_roots:
        walked = forest.walk([root])
        claimed.update((s.trace_id, s.span_id) for s, _ in walked)
        runs.append(_run_from_root(forest, root, walked, pricer))
    runs.extend(_inferred_runs(forest, claimed, pricer))

    by_session: dict[str, list[RunSummary]] = defaultdict(list)
    for run in runs:
        by_session[run.session_id].append(run)
    markers: dict[str, list[SpanLike]] = defaultdict(list)
    for key, span in forest.spans.items():
        if forest.category[key] == "session":
            sid = attr_text(span.attributes, semconv.GEN_AI_CONVERSATION_ID) or NO_SESSION
            markers[sid].append(span)
    sessions = [
        _session(sid, by_session.get(sid, []), markers.get(sid, []))
        for sid in by_session.keys() | markers.keys()
    ]
    sessions.sort(key=lambda s: (s.start_ns, s.session_id))
    return assemble_report(sessions, read_errors=tuple(read_errors), span_count=len(forest.spans))


def _session_id_in(walked: Iterable[tuple[SpanLike, int]]) -> str:
    for span, _ in walked:
        sid = tracing.session_of(span.attributes)
        if sid:
            return sid
    return NO_SESSION


def _cost_points(run_id: str, priced: Iterable[tuple[int, float, str]]) -> tuple[CostPoint, ...]:
    points: list[CostPoint] = []
    running = 0.0
    for time_ns, cost, model in sorted(priced, key=lambda p: p[0]):
        running += cost
        points.append(
            CostPoint(
                time_ns=time_ns, cost_usd=cost, cumulative_usd=running, run_id=run_id, model=model
            )
        )
    return tuple(points)


def _run_from_root(
    forest: _Forest, root: SpanLike, walked: list[tuple[SpanLike, int]], pricer: Pricer | None
) -> RunSummary:
    attrs = root.attributes
    run_id = attr_text(attrs, semconv.KIT_RUN_ID) or root.span_id
    duration_ms = max(0, root.end_ns - root.start_ns) / 1e6
    same = forest.same_calls(s for s, _ in walked)
    below = [
        (s, forest.category[(s.trace_id, s.span_id)])
        for s, _ in walked[1:]
        if (s.trace_id, s.span_id) not in same
    ]
    computed = compute_totals(below, duration_ms, pricer=pricer)
    recorded = recorded_totals(attrs, semconv.KIT_RUN_PREFIX)

    totals, models, priced = computed.totals, computed.models, computed.costs
    source: TotalsSource = "spans"
    warnings: list[str] = []
    if recorded and not any(c in ("llm", "tool", "turn") for _, c in below):
        totals, source = totals_from_recorded(recorded, duration_ms), "run attributes"
        models, priced = _unseen_calls(totals, root.end_ns)
    elif recorded:
        warnings = cross_check(f"run {run_id!r}", recorded, totals)

    stop_reason = attr_text(attrs, semconv.KIT_RUN_STOP_REASON)
    if stop_reason is None:
        stop_reason = "error" if is_error(root) else computed.last_finish_reason
    agent = tracing.agent_name_of(attrs) or None
    if agent is None and semconv.OPENINFERENCE_SPAN_KIND in attrs:
        agent = root.name  # OpenInference names an agent's span after the agent
    if agent is None:
        agent = root.name.split(" ", 1)[1] if " " in root.name else UNKNOWN
    return RunSummary(
        run_id=run_id,
        trace_id=root.trace_id,
        span_id=root.span_id,
        agent_name=agent,
        session_id=tracing.session_of(attrs) or _session_id_in(walked),
        start_ns=root.start_ns,
        end_ns=root.end_ns,
        stop_reason=stop_reason,
        error=error_text(root),
        totals=totals,
        totals_source=source,
        models=models,
        spans=tuple(_node(forest, s, depth) for s, depth in walked),
        cost_points=_cost_points(run_id, priced),
        warnings=tuple(warnings),
    )


def _unseen_calls(
    totals: Totals, end_ns: int
) -> tuple[tuple[ModelCost, ...], tuple[tuple[int, float, str], ...]]:
    """A model row and a cost point for calls known only from ``kit.run.*`` totals."""
    if not (totals.llm_call_count or totals.cost_usd or totals.unpriced_call_count):
        return (), ()
    # Keeps per-model tables and the cost line summing to the totals though the calls are unseen.
    row = ModelCost(
        provider="-",
        model=RUN_TOTALS_MODEL,
        llm_call_count=totals.llm_call_count,
        tokens=totals.tokens,
        cost_usd=totals.cost_usd,
        unpriced_call_count=totals.unpriced_call_count,
    )
    priced = ((end_ns, totals.cost_usd, RUN_TOTALS_MODEL),) if totals.cost_usd else ()
    return (row,), priced


def _inferred_runs(forest: _Forest, claimed: set[_Key], pricer: Pricer | None) -> list[RunSummary]:
    """LLM and tool calls outside any run, one inferred run per trace."""
    by_trace: dict[str, list[SpanLike]] = defaultdict(list)
    for key, span in forest.spans.items():
        if key not in claimed and forest.category[key] != "session":
            by_trace[span.trace_id].append(span)
    runs: list[RunSummary] = []
    for trace_id, members in by_trace.items():
        keys = {(s.trace_id, s.span_id) for s in members}
        if not any(forest.category[k] in ("llm", "tool") for k in keys):
            continue  # only unrelated spans (HTTP handlers, ...): nothing to report
        roots = sorted(
            (s for s in members if (s.trace_id, s.parent_span_id or "") not in keys),
            key=lambda s: (s.start_ns, s.span_id),
        )
        walked = [(s, d) for s, d in forest.walk(roots) if (s.trace_id, s.span_id) in keys]
        start = min(s.start_ns for s in members)
        end = max(s.end_ns for s in members)
        same = forest.same_calls(s for s, _ in walked)
        computed = compute_totals(
            [
                (s, forest.category[(s.trace_id, s.span_id)])
                for s, _ in walked
                if (s.trace_id, s.span_id) not in same
            ],
            max(0, end - start) / 1e6,
            pricer=pricer,
        )
        run_id = f"trace-{trace_id}"
        runs.append(
            RunSummary(
                run_id=run_id,
                trace_id=trace_id,
                span_id=None,
                agent_name=next(
                    (
                        a
                        for s, _ in walked
                        if (a := attr_text(s.attributes, semconv.GEN_AI_AGENT_NAME))
                    ),
                    UNKNOWN,
                ),
                session_id=_session_id_in(walked),
                start_ns=start,
                end_ns=end,
                stop_reason=computed.last_finish_reason,
                error=next((e for s, _ in walked if (e := error_text(s))), None),
                totals=computed.totals,
                totals_source="spans",
                models=computed.models,
                spans=tuple(_node(forest, s, d) for s, d in walked),
                cost_points=_cost_points(run_id, computed.costs),
                inferred=True,
            )
        )
    return runs


def _session(session_id: str, runs: list[RunSummary], markers: list[SpanLike]) -> SessionSummary:
    runs = sorted(runs, key=lambda r: (r.start_ns, r.run_id))
    totals = sum((r.totals for r in runs), Totals())
    warnings: list[str] = []
    for marker in markers:
        if marker.name != semconv.SPAN_SESSION_END:
            continue
        what = f"session {session_id!r}"
        recorded = recorded_totals(marker.attributes, semconv.KIT_SESSION_PREFIX)
        warnings.extend(cross_check(what, recorded, totals))
        if semconv.KIT_SESSION_RUN_COUNT in marker.attributes:
            run_count = marker.attributes[semconv.KIT_SESSION_RUN_COUNT]
            if attr_number(marker.attributes, semconv.KIT_SESSION_RUN_COUNT) != len(runs):
                warnings.append(
                    f"{what}: run_count is {run_count!r} on the span but {len(runs)} runs are "
                    "in the file"
                )
    return SessionSummary(
        session_id=session_id,
        start_ns=min([r.start_ns for r in runs] + [m.start_ns for m in markers]),
        end_ns=max([r.end_ns for r in runs] + [m.end_ns for m in markers]),
        runs=tuple(runs),
        totals=totals,
        models=merge_models(r.models for r in runs),
        warnings=tuple(warnings),
    )
