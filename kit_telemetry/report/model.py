"""The report model: finished spans grouped into sessions and runs, with their totals.

Where the numbers come from (the one decision every figure in a report rests on):

* **Recomputed from child spans.** A run's totals are summed from the ``chat``/``execute_tool``
  and ``turn`` spans below its ``invoke_agent`` span, exactly as ``events.md`` defines them
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

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from .. import semconv

SpanCategory = Literal["run", "turn", "llm", "tool", "session", "other"]
TotalsSource = Literal["spans", "run attributes"]

NO_SESSION = "(no session)"
"""The session id shown for runs whose spans carry no ``gen_ai.conversation.id``."""

UNKNOWN = "(unknown)"
RUN_TOTALS_MODEL = "(run totals)"
"""The model row standing for calls known only from a run span's ``kit.run.*`` totals."""

# OTLP status codes.
_STATUS_ERROR = 2

_TURN_NAME = re.compile(r"^turn \d+$")
_COST_TOLERANCE_USD = 1e-9


class SpanLike(Protocol):
    """What the report reads from a span (``exporters.otlp_json.SpanRecord`` fits)."""

    @property
    def trace_id(self) -> str: ...
    @property
    def span_id(self) -> str: ...
    @property
    def parent_span_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def start_ns(self) -> int: ...
    @property
    def end_ns(self) -> int: ...
    @property
    def attributes(self) -> Mapping[str, object]: ...
    @property
    def status_code(self) -> int: ...
    @property
    def status_message(self) -> str | None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Totals:
    """Counts, tokens, cost and time of a run, a session or a whole report.

    Token kinds are disjoint (``input_tokens`` excludes cached tokens); ``reasoning_tokens``
    are part of ``output_tokens``. ``cost_usd`` sums the priced calls only. For a session
    or a report, ``duration_ms`` is the sum of its runs' durations (time spent in runs).
    """

    turn_count: int = 0
    llm_call_count: int = 0
    budget_denied_count: int = 0
    failed_llm_call_count: int = 0
    tool_call_count: int = 0
    failed_tool_call_count: int = 0
    tool_names: tuple[str, ...] = ()
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_call_count: int = 0
    duration_ms: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Every billable token: the disjoint input kinds plus output."""
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.output_tokens
        )

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            turn_count=self.turn_count + other.turn_count,
            llm_call_count=self.llm_call_count + other.llm_call_count,
            budget_denied_count=self.budget_denied_count + other.budget_denied_count,
            failed_llm_call_count=self.failed_llm_call_count + other.failed_llm_call_count,
            tool_call_count=self.tool_call_count + other.tool_call_count,
            failed_tool_call_count=self.failed_tool_call_count + other.failed_tool_call_count,
            tool_names=self.tool_names + other.tool_names,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
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
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_call_count: int = 0

    def __add__(self, other: ModelCost) -> ModelCost:
        return replace(
            self,
            llm_call_count=self.llm_call_count + other.llm_call_count,
            budget_denied_count=self.budget_denied_count + other.budget_denied_count,
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_call_count=self.unpriced_call_count + other.unpriced_call_count,
        )


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
        return _assemble(
            [session],
            read_errors=self.read_errors,
            span_count=sum(len(run.spans) for run in session.runs),
        )


# --- attribute access -----------------------------------------------------------------


def _number(attrs: Mapping[str, object], key: str) -> float | None:
    value = attrs.get(key)
    # bool is an int subclass; a boolean where a count belongs is not a count.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            parsed = float(value)
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def _count(attrs: Mapping[str, object], key: str) -> int:
    value = _number(attrs, key)
    return max(0, int(value)) if value is not None else 0


def _text(attrs: Mapping[str, object], key: str) -> str | None:
    value = attrs.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _strings(attrs: Mapping[str, object], key: str) -> tuple[str, ...]:
    value = attrs.get(key)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    if isinstance(value, str) and value:
        return (value,)
    return ()


# --- classification -------------------------------------------------------------------


def categorize(span: SpanLike) -> SpanCategory:
    """What a span stands for, from ``gen_ai.operation.name`` or, failing that, its name."""
    name = span.name
    if name in (semconv.SPAN_SESSION_START, semconv.SPAN_SESSION_END):
        return "session"
    operation = _text(span.attributes, semconv.GEN_AI_OPERATION_NAME)
    if operation == semconv.OP_INVOKE_AGENT:
        return "run"
    if operation in semconv.LLM_OPERATIONS:
        return "llm"
    if operation == semconv.OP_EXECUTE_TOOL:
        return "tool"
    if semconv.KIT_TURN_INDEX in span.attributes or _TURN_NAME.match(name):
        return "turn"
    if operation is None:
        # Older instrumentations name spans by the convention but omit the operation.
        head = name.split(" ", 1)[0]
        if head == semconv.OP_INVOKE_AGENT:
            return "run"
        if head in semconv.LLM_OPERATIONS:
            return "llm"
        if head == semconv.OP_EXECUTE_TOOL:
            return "tool"
    return "other"


def _is_error(span: SpanLike) -> bool:
    return span.status_code == _STATUS_ERROR or semconv.ERROR_TYPE in span.attributes


def _model_of(span: SpanLike) -> str:
    attrs = span.attributes
    model = _text(attrs, semconv.GEN_AI_REQUEST_MODEL) or _text(
        attrs, semconv.GEN_AI_RESPONSE_MODEL
    )
    if model is None and " " in span.name:
        model = span.name.split(" ", 1)[1]
    return model or UNKNOWN


def _provider_of(span: SpanLike) -> str:
    attrs = span.attributes
    return _text(attrs, semconv.GEN_AI_PROVIDER_NAME) or _text(attrs, semconv.GEN_AI_SYSTEM) or "-"


def _tool_name_of(span: SpanLike) -> str:
    name = _text(span.attributes, semconv.GEN_AI_TOOL_NAME)
    if name is None and " " in span.name:
        name = span.name.split(" ", 1)[1]
    return name or UNKNOWN


def _error_text(span: SpanLike) -> str | None:
    if not _is_error(span):
        return None
    kind = _text(span.attributes, semconv.ERROR_TYPE)
    message = span.status_message or None
    if kind and message:
        # kit-telemetry's messages already read "Type: message"; don't say the type twice.
        return message if message.startswith(f"{kind}:") else f"{kind}: {message}"
    return kind or message or "error"


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
        is_error=_is_error(span),
        status_message=span.status_message or None,
        attributes=dict(span.attributes),
    )


# --- totals ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Computed:
    totals: Totals
    models: tuple[ModelCost, ...]
    costs: tuple[tuple[int, float, str], ...]  # (end_ns, cost_usd, model) of priced calls
    last_finish_reason: str | None


def _compute(spans: Sequence[tuple[SpanLike, SpanCategory]], duration_ms: float) -> _Computed:
    llm = sorted((s for s, c in spans if c == "llm"), key=lambda s: (s.start_ns, s.span_id))
    tools = sorted((s for s, c in spans if c == "tool"), key=lambda s: (s.start_ns, s.span_id))
    turn_spans = sum(1 for _, c in spans if c == "turn")

    models: dict[tuple[str, str], ModelCost] = {}
    costs: list[tuple[int, float, str]] = []
    counts: dict[str, int] = defaultdict(int)
    cost_usd = 0.0
    last_finish: str | None = None
    for span in llm:
        attrs = span.attributes
        provider, model = _provider_of(span), _model_of(span)
        outcome = _text(attrs, semconv.KIT_LLM_OUTCOME) or ("error" if _is_error(span) else "ok")
        if outcome == "budget_denied":
            # Refused before reaching the model: no call, no tokens, no cost (events.md).
            counts["denied"] += 1
            row = ModelCost(provider=provider, model=model, budget_denied_count=1)
        else:
            total_input = _count(attrs, semconv.GEN_AI_USAGE_INPUT_TOKENS)
            cache_read = _count(attrs, semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
            cache_write = _count(attrs, semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
            cost = _number(attrs, semconv.KIT_USAGE_COST_USD)
            row = ModelCost(
                provider=provider,
                model=model,
                llm_call_count=1,
                # On spans the input count includes the cache; our kinds are disjoint.
                input_tokens=max(0, total_input - cache_read - cache_write),
                output_tokens=_count(attrs, semconv.GEN_AI_USAGE_OUTPUT_TOKENS),
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=_count(attrs, semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
                cost_usd=cost or 0.0,
                unpriced_call_count=0 if cost is not None else 1,
            )
            if cost is not None:
                cost_usd += cost
                costs.append((span.end_ns, cost, model))
            if outcome != "ok":
                counts["failed"] += 1
            reasons = _strings(attrs, semconv.GEN_AI_RESPONSE_FINISH_REASONS)
            last_finish = reasons[0] if reasons else last_finish
        key = (provider, model)
        models[key] = models[key] + row if key in models else row

    merged = sum(models.values(), ModelCost(provider="", model=""))
    totals = Totals(
        turn_count=turn_spans if turn_spans else merged.llm_call_count,
        llm_call_count=merged.llm_call_count,
        budget_denied_count=counts["denied"],
        failed_llm_call_count=counts["failed"],
        tool_call_count=len(tools),
        failed_tool_call_count=sum(1 for t in tools if _tool_failed(t)),
        tool_names=tuple(_tool_name_of(t) for t in tools),
        input_tokens=merged.input_tokens,
        output_tokens=merged.output_tokens,
        cache_read_tokens=merged.cache_read_tokens,
        cache_write_tokens=merged.cache_write_tokens,
        reasoning_tokens=merged.reasoning_tokens,
        # Summed in call order above so the total matches a left-to-right reading.
        cost_usd=cost_usd,
        unpriced_call_count=merged.unpriced_call_count,
        duration_ms=duration_ms,
    )
    return _Computed(
        totals=totals,
        models=_sorted_models(models.values()),
        costs=tuple(costs),
        last_finish_reason=last_finish,
    )


def _tool_failed(span: SpanLike) -> bool:
    return _is_error(span) or span.attributes.get(semconv.KIT_TOOL_IS_ERROR) is True


def _sorted_models(models: Iterable[ModelCost]) -> tuple[ModelCost, ...]:
    return tuple(sorted(models, key=lambda m: (-m.cost_usd, m.provider, m.model)))


def _recorded_totals(attrs: Mapping[str, object], prefix: str) -> dict[str, object]:
    """The ``kit.<scope>.*`` totals a span carries, by field name (absent ones left out)."""
    recorded: dict[str, object] = {}
    for name in semconv.TOTAL_FIELDS:
        key = semconv.total_attribute(prefix, name)
        if key in attrs:
            recorded[name] = attrs[key]
    return recorded


def _totals_from_recorded(recorded: Mapping[str, object], duration_ms: float) -> Totals:
    return Totals(
        turn_count=_count(recorded, "turn_count"),
        llm_call_count=_count(recorded, "llm_call_count"),
        tool_call_count=_count(recorded, "tool_call_count"),
        tool_names=_strings(recorded, "tool_names"),
        input_tokens=_count(recorded, "input_tokens"),
        output_tokens=_count(recorded, "output_tokens"),
        cache_read_tokens=_count(recorded, "cache_read_tokens"),
        cache_write_tokens=_count(recorded, "cache_write_tokens"),
        reasoning_tokens=_count(recorded, "reasoning_tokens"),
        cost_usd=_number(recorded, "cost_usd") or 0.0,
        unpriced_call_count=_count(recorded, "unpriced_call_count"),
        duration_ms=duration_ms,
    )


def _show(value: object) -> str:
    # Sums of float costs carry binary noise (0.013649999999999999); ten digits is plenty.
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(repr(v) for v in value) + "]"
    return repr(value)


def _cross_check(what: str, recorded: Mapping[str, object], totals: Totals) -> list[str]:
    """Disagreements between recorded ``kit.*`` totals and recomputed ones, as messages."""
    problems: list[str] = []
    for name, value in recorded.items():
        # A run's duration is its own span's length; nothing to recompute it from.
        if name == "duration_ms":
            continue
        ours = getattr(totals, name)
        if name == "tool_names":
            theirs: object = _strings(recorded, name)
            same = theirs == ours
        elif name == "cost_usd":
            theirs = _number(recorded, name)
            same = theirs is not None and abs(theirs - ours) <= _COST_TOLERANCE_USD * max(
                1.0, abs(ours)
            )
        else:
            theirs = _number(recorded, name)
            same = theirs is not None and theirs == ours
        if not same:
            problems.append(
                f"{what}: {name} is {_show(value)} on the span but {_show(ours)} from its "
                "child spans"
            )
    return problems


# --- building -------------------------------------------------------------------------


def build_report(spans: Iterable[SpanLike], *, read_errors: Sequence[str] = ()) -> Report:
    """Group spans into sessions and runs and compute every total of the report.

    Args:
        spans: finished spans in any order (children may come before their parents).
        read_errors: messages about input that could not be read, carried into the report.
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
        runs.append(_run_from_root(forest, root, walked))
    runs.extend(_inferred_runs(forest, claimed))

    by_session: dict[str, list[RunSummary]] = defaultdict(list)
    for run in runs:
        by_session[run.session_id].append(run)
    markers: dict[str, list[SpanLike]] = defaultdict(list)
    for key, span in forest.spans.items():
        if forest.category[key] == "session":
            sid = _text(span.attributes, semconv.GEN_AI_CONVERSATION_ID) or NO_SESSION
            markers[sid].append(span)
    sessions = [
        _session(sid, by_session.get(sid, []), markers.get(sid, []))
        for sid in by_session.keys() | markers.keys()
    ]
    sessions.sort(key=lambda s: (s.start_ns, s.session_id))
    return _assemble(sessions, read_errors=tuple(read_errors), span_count=len(forest.spans))


def _session_id_in(walked: Iterable[tuple[SpanLike, int]]) -> str:
    for span, _ in walked:
        sid = _text(span.attributes, semconv.GEN_AI_CONVERSATION_ID)
        if sid is not None:
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
    forest: _Forest, root: SpanLike, walked: list[tuple[SpanLike, int]]
) -> RunSummary:
    attrs = root.attributes
    run_id = _text(attrs, semconv.KIT_RUN_ID) or root.span_id
    duration_ms = max(0, root.end_ns - root.start_ns) / 1e6
    below = [(s, forest.category[(s.trace_id, s.span_id)]) for s, _ in walked[1:]]
    computed = _compute(below, duration_ms)
    recorded = _recorded_totals(attrs, semconv.KIT_RUN_PREFIX)

    totals, models, priced = computed.totals, computed.models, computed.costs
    source: TotalsSource = "spans"
    warnings: list[str] = []
    if recorded and not any(c in ("llm", "tool", "turn") for _, c in below):
        totals, source = _totals_from_recorded(recorded, duration_ms), "run attributes"
        models, priced = _unseen_calls(totals, root.end_ns)
    elif recorded:
        warnings = _cross_check(f"run {run_id!r}", recorded, totals)

    stop_reason = _text(attrs, semconv.KIT_RUN_STOP_REASON)
    if stop_reason is None:
        stop_reason = "error" if _is_error(root) else computed.last_finish_reason
    agent = _text(attrs, semconv.GEN_AI_AGENT_NAME)
    if agent is None:
        agent = root.name.split(" ", 1)[1] if " " in root.name else UNKNOWN
    return RunSummary(
        run_id=run_id,
        trace_id=root.trace_id,
        span_id=root.span_id,
        agent_name=agent,
        session_id=_text(attrs, semconv.GEN_AI_CONVERSATION_ID) or _session_id_in(walked),
        start_ns=root.start_ns,
        end_ns=root.end_ns,
        stop_reason=stop_reason,
        error=_error_text(root),
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
        input_tokens=totals.input_tokens,
        output_tokens=totals.output_tokens,
        cache_read_tokens=totals.cache_read_tokens,
        cache_write_tokens=totals.cache_write_tokens,
        reasoning_tokens=totals.reasoning_tokens,
        cost_usd=totals.cost_usd,
        unpriced_call_count=totals.unpriced_call_count,
    )
    priced = ((end_ns, totals.cost_usd, RUN_TOTALS_MODEL),) if totals.cost_usd else ()
    return (row,), priced


def _inferred_runs(forest: _Forest, claimed: set[_Key]) -> list[RunSummary]:
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
        computed = _compute(
            [(s, forest.category[(s.trace_id, s.span_id)]) for s, _ in walked],
            max(0, end - start) / 1e6,
        )
        run_id = f"trace-{trace_id}"
        runs.append(
            RunSummary(
                run_id=run_id,
                trace_id=trace_id,
                span_id=None,
                agent_name=next(
                    (a for s, _ in walked if (a := _text(s.attributes, semconv.GEN_AI_AGENT_NAME))),
                    UNKNOWN,
                ),
                session_id=_session_id_in(walked),
                start_ns=start,
                end_ns=end,
                stop_reason=computed.last_finish_reason,
                error=next((e for s, _ in walked if (e := _error_text(s))), None),
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
        recorded = _recorded_totals(marker.attributes, semconv.KIT_SESSION_PREFIX)
        warnings.extend(_cross_check(what, recorded, totals))
        if semconv.KIT_SESSION_RUN_COUNT in marker.attributes:
            run_count = marker.attributes[semconv.KIT_SESSION_RUN_COUNT]
            if _number(marker.attributes, semconv.KIT_SESSION_RUN_COUNT) != len(runs):
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
        models=_merge_models(r.models for r in runs),
        warnings=tuple(warnings),
    )


def _merge_models(groups: Iterable[Iterable[ModelCost]]) -> tuple[ModelCost, ...]:
    merged: dict[tuple[str, str], ModelCost] = {}
    for group in groups:
        for row in group:
            key = (row.provider, row.model)
            merged[key] = merged[key] + row if key in merged else row
    return _sorted_models(merged.values())


def _assemble(
    sessions: Sequence[SessionSummary], *, read_errors: tuple[str, ...], span_count: int
) -> Report:
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
        models=_merge_models(s.models for s in sessions),
        cost_timeline=tuple(timeline),
        read_errors=read_errors,
        span_count=span_count,
    )
