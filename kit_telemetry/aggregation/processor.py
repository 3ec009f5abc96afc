"""``UsageAggregator``: the span processor that folds calls into turn, run and session totals.

It reads spans (kit-telemetry's own, through
their ``SpanPayload``, and those of any instrumentation that follows the GenAI conventions,
through their attributes), keeps totals keyed by run so concurrent runs never mix, builds
the typed events of ``events.py`` and hands them on: the LLM, tool and run facts to the
metrics, and every event, with its span, to the event sink (the extension runtime, which
sits after it on the same provider).

Spans of other code are tracked from their start (the run a call belongs to is known
there) but read again at their end, where what they are and their usage are decided:
instrumentations may set both at any time before ``end``. An LLM or tool span outside any
run known at its start joins an implicit run, held and ended by the outermost span tracked
around it (its own, or an agent span that said what it is only at its end). One model call
described by nested LLM spans counts once (see ``_counts``); agent spans never add usage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode, get_current_span
from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..events import (
    AgentEndEvent,
    AgentStartEvent,
    ErrorEvent,
    Event,
    EventType,
    LLMUsageEvent,
    SessionEndEvent,
    SessionStartEvent,
    SubagentEndEvent,
    SubagentStartEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEndEvent,
    TurnStartEvent,
    UsageTotals,
    UserInputEvent,
)
from ..tokens import TokenUsage
from ..totals import RunningTotals, RunTally, SessionTally
from ..tracing import (
    LLM,
    OTHER,
    PAYLOADS,
    RUN,
    SESSION_END,
    SESSION_START,
    TOOL,
    TURN,
    UNKNOWN_NAME,
    LLMUsage,
    SpanPayload,
    error_type_of,
    payload_from_attributes,
    read_end_attributes,
)
from .ports import EventSink, Pricer, SpendSink, UsageMetrics

logger = logging.getLogger("kit_telemetry")

# Sessions seen only through foreign spans never end; keep the most recent ones.
MAX_OPEN_SESSIONS = 10_000

# The agent name of the run an LLM call made outside any agent span forms on its own.
IMPLICIT_AGENT_NAME = "(no agent)"

# Read for every span: an enum member read through its class costs several times a
# module global's read (Python 3.11).
_ERROR = StatusCode.ERROR
NO_TOKENS = TokenUsage()
_SESSION_END_EVENT = EventType.SESSION_END


class UsageAggregator(SpanProcessor):
    """Per-turn, per-run and per-session totals, built from spans.

    Args:
        pricer: prices LLM calls whose usage came without a cost (spans of other code).
        metrics: receives every finished LLM call, tool call and run.
        on_error: reports an internal failure (component, exception); default: logged.
    """

    def __init__(
        self,
        *,
        pricer: Pricer | None = None,
        metrics: UsageMetrics | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
    ) -> None:
        self._pricer = pricer
        self._metrics = metrics
        self._on_error = on_error
        self._lock = threading.Lock()
        self._foreign: dict[int, SpanPayload] = {}  # live spans of other code, by span id
        self._sessions: OrderedDict[str, SessionTally] = OrderedDict()
        self._sink: EventSink | None = None
        self._spend: SpendSink | None = None
        self.want_events(tuple(EventType))

    # --- configuration -------------------------------------------------------------
    def set_event_sink(self, sink: EventSink | None) -> None:
        """Deliver every event built from a span, with the span, to ``sink``."""
        self._sink = sink

    def set_spend_sink(self, sink: SpendSink | None) -> None:
        """Report each LLM call of other code to ``sink`` (budgets charge it there)."""
        self._spend = sink

    def want_events(self, types: Sequence[EventType]) -> None:
        """Build the optional events (``OPTIONAL_EVENTS``) only of these types.

        The others are always built: the metrics and ``run.end_event`` need them.
        """
        wanted = frozenset(types)
        # One flag per place that builds optional events, read for every span.
        self._build_run_start = bool({EventType.AGENT_START, EventType.USER_INPUT} & wanted)
        self._build_session_start = EventType.SESSION_START in wanted
        self._build_turn_start = EventType.TURN_START in wanted
        self._build_tool_call = EventType.TOOL_CALL in wanted
        self._build_turn_end = EventType.TURN_END in wanted

    def mark_subscription(self, session_id: str) -> None:
        """Calls of this session cost 0.0 when priced here (subscription billing)."""
        with self._lock:
            self._session(session_id, time.time_ns()).subscription = True

    # --- queries --------------------------------------------------------------------
    def session_usage(self, session_id: str) -> UsageTotals:
        """The totals of a live session so far (zeros for an unknown one)."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return UsageTotals()
            t = session.totals
            return UsageTotals(
                run_count=session.run_count,
                turn_count=t.turn_count,
                llm_call_count=t.llm_call_count,
                tool_call_count=len(t.tool_names),
                cost_usd=t.cost_usd,
                unpriced_call_count=t.unpriced_call_count,
                cost_complete=t.unpriced_call_count == 0,
                **t.tokens.as_fields(),
            )

    def run_attributes(
        self, payload: SpanPayload, duration_ms: float, *, failed: bool
    ) -> dict[str, AttributeValue]:
        """The ``kit.run.*`` totals of a run made through the API, to set before it ends.

        Args:
            payload: the run span's payload (counted since its start).
            duration_ms: the run's duration.
            failed: the run ends with an error.
        """
        run = payload.run
        if run is None:
            return {}
        with self._lock:
            out = _prefixed(sc.KIT_RUN_PREFIX, run.totals, duration_ms)
            stop_reason = payload.stop_reason
            if stop_reason is None and failed:
                stop_reason = "error"
            stop_reason = stop_reason or run.last_finish_reason
        out[sc.KIT_RUN_ID] = run.run_id
        if stop_reason is not None:
            out[sc.KIT_RUN_STOP_REASON] = stop_reason
        return out

    def session_attributes(self, session_id: str, end_ns: int) -> dict[str, AttributeValue]:
        """The ``kit.session.*`` totals of a live session, for its end span."""
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return {}
            out = _prefixed(
                sc.KIT_SESSION_PREFIX, session.totals, (end_ns - session.started_ns) / 1e6
            )
            out[sc.KIT_SESSION_RUN_COUNT] = session.run_count
        return out

    def open_span_count(self) -> int:
        """Live spans of other code tracked, and live sessions.

        For tests of bounded memory.
        """
        with self._lock:
            return len(self._foreign) + len(self._sessions)

    # --- SpanProcessor ----------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            events = self._start(span, PAYLOADS.staged())
        except Exception as exc:  # a processor must never raise into span creation
            self._fail(exc)
            return
        if events and self._sink is not None:
            self._sink(events, span)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            events = self._end(span)
        except Exception as exc:
            self._fail(exc)
            return
        if events and self._sink is not None:
            self._sink(events, span)
        if events and events[-1].type is _SESSION_END_EVENT:
            with self._lock:
                self._sessions.pop(events[-1].session_id, None)

    def shutdown(self) -> None:
        with self._lock:
            self._foreign.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # --- internals --------------------------------------------------------------------
    def _fail(self, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error("aggregator", exc)
        else:
            logger.error("kit-telemetry aggregator failed", exc_info=exc)

    def _session(self, session_id: str, started_ns: int) -> SessionTally:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = SessionTally(started_ns)
            if len(self._sessions) > MAX_OPEN_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def _parent_of(self, span: ReadableSpan) -> SpanPayload | None:
        parent = span.parent
        if parent is None:
            return None
        parent_id = parent.span_id
        return PAYLOADS.get(parent_id) or self._foreign.get(parent_id)

    def _start(self, span: Span, payload: SpanPayload | None) -> list[Event]:
        own = payload is not None
        if payload is None:
            payload = payload_from_attributes(span)
        role = payload.role
        started_ns = span.start_time or time.time_ns()
        session_id = payload.session_id
        if role == RUN:
            run_id = format(span.context.trace_id, "032x")
            outer: SpanPayload | None = None
            if span.parent is not None:  # a nested agent: not a trace root
                run_id = f"{run_id}-{span.context.span_id:016x}"
                outer = payload.parent if own and payload.parent else self._parent_of(span)
            parent_run = outer.run if outer is not None else None
            tool_call_id = outer.detail if outer is not None and outer.role == TOOL else None
            with self._lock:
                session = self._session(session_id, started_ns)
                session.run_count += 1
                if parent_run is not None:
                    parent_run.subagent_count += 1
            payload.run = RunTally(
                run_id, session_id, payload.name, session, parent_run, tool_call_id
            )
            self._remember(span, payload, own)
            events: list[Event] = []
            if parent_run is not None:
                events.append(
                    SubagentStartEvent(
                        session_id=session_id,
                        timestamp_ns=started_ns,
                        run_id=run_id,
                        parent_run_id=parent_run.run_id,
                        tool_call_id=tool_call_id,
                        agent_name=payload.name,
                    )
                )
            if not self._build_run_start:
                return events
            prompt = payload.content
            events += [
                AgentStartEvent(
                    session_id=session_id,
                    timestamp_ns=started_ns,
                    run_id=run_id,
                    agent_name=payload.name,
                    prompt=prompt,
                )
            ]
            # Delivered for every run, right after agent_start; spans of other code carry
            # no prompt, so their user_input has text=None.
            events.append(
                UserInputEvent(
                    session_id=session_id, timestamp_ns=started_ns, run_id=run_id, text=prompt
                )
            )
            return events
        if role == SESSION_START:
            with self._lock:
                self._session(session_id, started_ns)
            if not self._build_session_start:
                return []
            return [
                SessionStartEvent(
                    session_id=session_id, timestamp_ns=started_ns, session_file=payload.detail
                )
            ]
        if role == SESSION_END:
            return []
        parent = payload.parent if own and payload.parent is not None else self._parent_of(span)
        # The span it is nested in, for telling nested spans of one call apart.
        payload.up = parent
        if own and role == LLM:
            # Our llm_call spans hang under our turn, but the code may run inside another
            # library's LLM span of the same call (a framework's model adapter calling
            # llm_call): the span current here says so.
            ambient = self._foreign.get(get_current_span().get_span_context().span_id)
            if ambient is not None and ambient.role == LLM:
                payload.up = ambient
        payload.own = own
        run = parent.run if parent is not None else None
        if parent is None or run is None:
            # Outside any run. Remembered all the same: what it is may be decided at its end
            # (an LLM call made outside any agent span is a run of its own).
            self._remember(span, payload, own)
            return []
        payload.run = run
        if role == TURN:
            index = payload.detail = payload.detail if isinstance(payload.detail, int) else 0
            payload.turn = RunningTotals()
            with self._lock:
                run.totals.turn_count += 1
                run.session.totals.turn_count += 1
            self._remember(span, payload, own)
            if not self._build_turn_start:
                return []
            return [
                TurnStartEvent(
                    session_id=run.session_id,
                    timestamp_ns=started_ns,
                    run_id=run.run_id,
                    turn_index=index,
                )
            ]
        payload.turn = parent.turn
        if role == TOOL and not own and payload.name == UNKNOWN_NAME:
            payload.role = OTHER  # a tool with no name yet: what it is is read at its end
        self._remember(span, payload, own)
        if payload.role == TOOL:
            return self._tool_started(payload, payload.name, started_ns)
        return []

    def _remember(self, span: Span, payload: SpanPayload, own: bool) -> None:
        if not own:
            with self._lock:
                self._foreign[span.context.span_id] = payload

    def _end(self, span: ReadableSpan) -> list[Event]:
        span_id = span.context.span_id
        # node: the payload the aggregator tracked since the start; a span of other code is
        # read again at its end: what it is and its usage may have been set after its start
        # (OpenInference's LangChain tracer sets every attribute just before the end).
        node = payload = PAYLOADS.get(span_id)
        told_late = False
        if payload is None:
            with self._lock:
                node = self._foreign.pop(span_id, None)
            if node is None and span.name != sc.SPAN_SESSION_END:
                return []
            payload = payload_from_attributes(span)
            if node is not None:
                read_end_attributes(span, payload)
                if node.role == OTHER and payload.role in (LLM, TOOL):
                    node.role = payload.role
                    node.name, node.detail = payload.name, payload.detail
                    told_late = True
        if node is None:
            return self._end_session(span, payload) if payload.role == SESSION_END else []
        role = node.role
        if node.run is None and role not in (LLM, TOOL) and not node.implicit:
            return self._end_session(span, payload) if payload.role == SESSION_END else []
        run = node.run
        if run is not None and not run.session_id and payload.session_id:
            # The conversation id came late (set at a span's end): the run joins it now.
            self._adopt_session(run, payload.session_id, span.start_time or time.time_ns())
        events: list[Event] = []
        if role == LLM:
            events = self._end_llm(span, node, payload)
        elif role == TOOL:
            if told_late or run is None:  # its tool_call was not delivered at the start
                if run is None:
                    with self._lock:
                        run, events = self._implicit_run(span, node, payload)
                events += self._tool_started(node, payload.name, span.start_time or time.time_ns())
            events += self._end_tool(span, node, payload)
        elif role == TURN:
            events = self._end_turn(span, node)
        elif role == RUN:
            return self._end_run(span, node, payload)
        if node.implicit:
            if payload.role == RUN and node.run is not None:
                # The agent span said what it is only at its end: the run takes its name.
                node.run.agent_name = payload.name
            events += self._end_run(span, node, payload)
        return events

    def _tool_started(self, node: SpanPayload, name: str, started_ns: int) -> list[Event]:
        run = node.run
        assert run is not None
        with self._lock:
            run.totals.tool_names.append(name)
            run.session.totals.tool_names.append(name)
            if node.turn is not None:
                node.turn.tool_names.append(name)
        if not self._build_tool_call:
            return []
        return [
            ToolCallEvent(
                session_id=run.session_id,
                timestamp_ns=started_ns,
                run_id=run.run_id,
                tool_name=name,
                call_id=node.detail,
                arguments=node.content,
            )
        ]

    def _adopt_session(self, run: RunTally, session_id: str, seen_ns: int) -> None:
        """Move a run counted so far under no session to ``session_id`` (first seen at ``seen_ns``)."""
        with self._lock:
            if run.session_id:  # another span of the run got there first
                return
            old = run.session
            new = self._session(session_id, seen_ns)
            moved, source, target = run.totals, old.totals, new.totals
            for field in ("llm_call_count", "cost_usd", "unpriced_call_count", "turn_count"):
                setattr(source, field, getattr(source, field) - getattr(moved, field))
                setattr(target, field, getattr(target, field) + getattr(moved, field))
            source.tokens = TokenUsage(
                **{k: v - getattr(moved.tokens, k) for k, v in source.tokens.as_fields().items()}
            )
            target.tokens += moved.tokens
            for name in moved.tool_names:
                source.tool_names.remove(name)
            target.tool_names.extend(moved.tool_names)
            old.run_count -= 1
            new.run_count += 1
            run.session, run.session_id = new, session_id

    def _end_llm(self, span: ReadableSpan, node: SpanPayload, payload: SpanPayload) -> list[Event]:
        outcome = payload.outcome
        error_type = error_type_of(span) if outcome != "ok" else ""
        duration_ms = _duration_ms(span)
        end_ns = span.end_time or time.time_ns()
        usage = payload.usage
        if outcome == "budget_denied":
            with self._lock:
                self._counts(node, None)  # the spans of other code around it: the same call
            run = node.run
            if run is None:
                return []
            # Never reached the model: counted only as a denied call.
            denied = LLMUsageEvent(
                session_id=run.session_id,
                timestamp_ns=end_ns,
                run_id=run.run_id,
                provider=payload.detail,
                model=payload.name,
                step=-1,
                duration_ms=duration_ms,
            )
            if self._metrics is not None:
                self._metrics.record_llm_call(denied, outcome=outcome, error_type=error_type)
            return []
        events: list[Event] = []
        with self._lock:
            if not self._counts(node, usage):
                return []
            if usage is None:
                usage = node.usage_below
            run = node.run
            if run is None:
                run, started = self._implicit_run(span, node, payload)
                events.extend(started)
        cost_usd: float | None = None
        if usage is not None:
            cost_usd = usage.cost_usd
            if not usage.priced and self._pricer is not None:  # our own calls came priced
                cost_usd = self._pricer.cost_usd(
                    payload.detail,
                    payload.name,
                    usage.tokens,
                    subscription=run.session.subscription,
                )
        with self._lock:
            step = run.llm_steps
            run.llm_steps += 1
            # A call that reported no usage counts, with no tokens, as unpriced.
            tokens = usage.tokens if usage is not None else NO_TOKENS
            finish_reason = usage.finish_reason if usage is not None else None
            event = LLMUsageEvent(
                session_id=run.session_id,
                timestamp_ns=end_ns,
                run_id=run.run_id,
                provider=payload.detail,
                model=payload.name,
                step=step,
                cost_usd=cost_usd,
                finish_reason=finish_reason,
                response_id=usage.response_id if usage is not None else None,
                duration_ms=duration_ms,
                **tokens.as_fields(),
            )
            if finish_reason is not None:
                run.last_finish_reason = finish_reason
            run.totals.add_call(tokens, cost_usd)
            run.session.totals.add_call(tokens, cost_usd)
            ancestor = run.parent
            while ancestor is not None:  # a sub-agent's calls are its parents' too
                ancestor.totals.add_call(tokens, cost_usd)
                ancestor = ancestor.parent
            if node.turn is not None:
                node.turn.add_call(tokens, cost_usd)
            else:
                # Spans of other code without turn spans: one turn per LLM call.
                run.totals.turn_count += 1
                run.session.totals.turn_count += 1
        if self._metrics is not None:
            self._metrics.record_llm_call(event, outcome=outcome, error_type=error_type)
        if self._spend is not None and not node.own:  # our own calls were admitted
            self._spend(event, run.agent_name)
        events.append(event)
        return events

    def _counts(self, node: SpanPayload, usage: LLMUsage | None) -> bool:
        """Whether this LLM span is the one that counts its call (called under the lock).

        Several instrumentations may describe one model call with nested LLM spans (a
        framework's chat span around the provider SDK's, our own ``llm_call`` span around
        an instrumented SDK call). It counts once:

        * our own LLM-call span always counts; a span of other code nested in one of ours
          never does, and hands its usage up in case ours reported none;
        * otherwise the innermost span with usage counts and its enclosing LLM spans do
          not; an inner span without usage leaves the count to an enclosing LLM span.
        """
        ancestors: list[SpanPayload] = []
        up = node.up
        while up is not None and up.role != RUN:  # a nested agent is a boundary
            ancestors.append(up)
            up = up.up
        if not node.own:
            for ancestor in ancestors:
                if ancestor.own and ancestor.role == LLM:
                    if usage is not None and ancestor.usage_below is None:
                        ancestor.usage_below = usage
                    return False
            if node.counted_below:
                return False
            if usage is None and any(a.role == LLM for a in ancestors):
                return False
        for ancestor in ancestors:
            ancestor.counted_below = True
        return True

    def _implicit_run(
        self, span: ReadableSpan, node: SpanPayload, payload: SpanPayload
    ) -> tuple[RunTally, list[Event]]:
        """The run of a call made outside any run known at its start (called under the lock).

        The outermost span tracked around the call holds it and ends it: the call's own span
        when it stands alone, else the span of an agent that said what it is only at its
        end, a framework's span of the same call, or a request handler's span.
        """
        host = node
        up = node.up
        while up is not None:
            host = up
            up = up.up
        if host.run is not None:
            node.run = host.run
            return host.run, []
        started_ns = span.start_time or time.time_ns()
        session_id = payload.session_id
        session = self._session(session_id, started_ns)
        session.run_count += 1
        run_id = f"{span.context.trace_id:032x}-{span.context.span_id:016x}"
        run = RunTally(run_id, session_id, IMPLICIT_AGENT_NAME, session)
        host.run = node.run = run
        host.implicit = True
        if not self._build_run_start:
            return run, []
        return run, [
            AgentStartEvent(
                session_id=session_id,
                timestamp_ns=started_ns,
                run_id=run_id,
                agent_name=IMPLICIT_AGENT_NAME,
                prompt=None,
            ),
            UserInputEvent(
                session_id=session_id, timestamp_ns=started_ns, run_id=run_id, text=None
            ),
        ]

    def _end_tool(self, span: ReadableSpan, node: SpanPayload, payload: SpanPayload) -> list[Event]:
        run = node.run
        assert run is not None
        cost = payload.usage.cost_usd if payload.usage is not None else None
        if cost:  # the tool's own cost (tool.add_cost) counts in the totals
            with self._lock:
                run.totals.add_cost(cost)
                run.session.totals.add_cost(cost)
                if node.turn is not None:
                    node.turn.add_cost(cost)
        event = ToolResultEvent(
            session_id=run.session_id,
            timestamp_ns=span.end_time or time.time_ns(),
            run_id=run.run_id,
            tool_name=payload.name,
            call_id=payload.detail,
            result=payload.result,
            is_error=payload.is_error or span.status.status_code is _ERROR,
            duration_ms=_duration_ms(span),
            cost_usd=cost,
        )
        if self._metrics is not None:
            attributes = span.attributes or {}
            tool_type = attributes.get(sc.GEN_AI_TOOL_TYPE)
            self._metrics.record_tool_call(
                event,
                tool_type=tool_type if isinstance(tool_type, str) else "",
                error_type=error_type_of(span),
            )
        return [event]

    def _end_turn(self, span: ReadableSpan, node: SpanPayload) -> list[Event]:
        if not self._build_turn_end:
            return []
        run, turn = node.run, node.turn
        assert run is not None and turn is not None
        with self._lock:
            fields = turn.fields(_duration_ms(span))
        fields["turn_count"] = 1
        return [
            TurnEndEvent(
                session_id=run.session_id,
                timestamp_ns=span.end_time or time.time_ns(),
                run_id=run.run_id,
                turn_index=node.detail,
                message=node.result,
                **fields,
            )
        ]

    def _end_run(self, span: ReadableSpan, node: SpanPayload, payload: SpanPayload) -> list[Event]:
        run = node.run
        assert run is not None
        status = span.status
        error = payload.error
        stop_reason = payload.stop_reason
        if status.status_code is _ERROR:
            error = status.description or error_type_of(span)
            stop_reason = stop_reason or "error"
        with self._lock:
            fields = run.totals.fields(_duration_ms(span))
        result = payload.result
        event = AgentEndEvent(
            session_id=run.session_id,
            timestamp_ns=span.end_time or time.time_ns(),
            run_id=run.run_id,
            agent_name=run.agent_name,
            messages=payload.messages,
            stop_reason=stop_reason or run.last_finish_reason,
            response=result if result is None or isinstance(result, str) else str(result),
            error=error,
            subagent_count=run.subagent_count,
            **fields,
        )
        payload.end_event = event
        if self._metrics is not None:
            provider = (span.attributes or {}).get(sc.GEN_AI_PROVIDER_NAME)
            self._metrics.record_run(
                event,
                provider=provider if isinstance(provider, str) else "",
                error_type=error_type_of(span),
            )
        events: list[Event] = [event]
        if status.status_code is _ERROR and event.stop_reason != "cancelled":
            failed = ErrorEvent(
                session_id=run.session_id,
                timestamp_ns=event.timestamp_ns,
                run_id=run.run_id,
                agent_name=run.agent_name,
                error_type=error_type_of(span),
                message=error or "",
            )
            events.insert(0, failed)
        if run.parent is not None:
            events.append(
                SubagentEndEvent(
                    session_id=run.session_id,
                    timestamp_ns=event.timestamp_ns,
                    run_id=run.run_id,
                    parent_run_id=run.parent.run_id,
                    tool_call_id=run.tool_call_id,
                    agent_name=run.agent_name,
                    stop_reason=event.stop_reason,
                    **fields,
                )
            )
        return events

    def _end_session(self, span: ReadableSpan, payload: SpanPayload) -> list[Event]:
        session_id = payload.session_id
        end_ns = span.end_time or time.time_ns()
        with self._lock:
            # Forgotten only after the handlers ran (see on_end): ctx.usage still holds it.
            session = self._sessions.get(session_id)
            if session is None:
                return []
            fields = session.totals.fields((end_ns - session.started_ns) / 1e6)
        event = SessionEndEvent(
            session_id=session_id, timestamp_ns=end_ns, run_count=session.run_count, **fields
        )
        own = PAYLOADS.get(span.context.span_id)
        if own is not None:
            own.end_event = event
        return [event]


def _prefixed(prefix: str, totals: RunningTotals, duration_ms: float) -> dict[str, AttributeValue]:
    return {prefix + key: value for key, value in totals.fields(duration_ms).items()}


def _duration_ms(span: ReadableSpan) -> float:
    start, end = span.start_time, span.end_time
    if start is None or end is None:
        return 0.0
    return (end - start) / 1e6
