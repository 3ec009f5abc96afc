"""The aggregator: folds LLM calls and tool calls into turn, run and session totals.

``UsageAggregator`` is a ``SpanProcessor``. It reads spans (kit-telemetry's own and those
of any instrumentation that follows the GenAI conventions), keeps totals keyed by run so
concurrent runs never mix, builds the typed events of ``events.py`` and hands them on:
the LLM, tool and run facts to the metrics, every event to the processor that runs after it
on the same span (the extension runtime, through ``take_events``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import StatusCode
from opentelemetry.util.types import AttributeValue

from . import semconv as sc
from .events import (
    AgentEndEvent,
    AgentStartEvent,
    Event,
    EventType,
    LLMUsageEvent,
    SessionEndEvent,
    SessionStartEvent,
    ToolCallEvent,
    ToolResultEvent,
    TurnEndEvent,
    TurnStartEvent,
    UsageTotals,
    UserInputEvent,
)
from .tracing import PAYLOADS, SpanPayload, parent_span_id, set_attributes_while_ending

logger = logging.getLogger("kit_telemetry")

_NO_SESSION = ""
# Sessions seen only through foreign spans never end; keep the most recent ones.
MAX_OPEN_SESSIONS = 10_000


class Pricer(Protocol):
    """Prices one call; ``None`` when the model is unknown (``pricing.PriceTable`` is one)."""

    def cost_usd(
        self,
        provider: str,
        model: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        subscription: bool = False,
    ) -> float | None: ...


class UsageMetrics(Protocol):
    """Where the aggregator reports each finished call and run (``metrics.KitMetrics``)."""

    def record_llm_call(
        self, event: LLMUsageEvent, *, outcome: str = "ok", error_type: str = "", operation: str = "chat"
    ) -> None: ...

    def record_tool_call(self, event: ToolResultEvent) -> None: ...

    def record_run(self, event: AgentEndEvent) -> None: ...


class _Totals:
    """Mutable running totals of a turn, a run or a session."""

    __slots__ = (
        "cache_read_tokens",
        "cache_write_tokens",
        "cost_usd",
        "input_tokens",
        "llm_call_count",
        "output_tokens",
        "reasoning_tokens",
        "tool_names",
        "turn_count",
        "unpriced_call_count",
    )

    def __init__(self) -> None:
        self.llm_call_count = 0
        self.tool_names: list[str] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.cost_usd = 0.0
        self.unpriced_call_count = 0
        self.turn_count = 0

    def add_call(self, call: LLMUsageEvent) -> None:
        self.llm_call_count += 1
        self.input_tokens += call.input_tokens
        self.output_tokens += call.output_tokens
        self.cache_read_tokens += call.cache_read_tokens
        self.cache_write_tokens += call.cache_write_tokens
        self.reasoning_tokens += call.reasoning_tokens
        if call.cost_usd is None:
            self.unpriced_call_count += 1
        else:
            self.cost_usd += call.cost_usd

    def fields(self, duration_ms: float) -> dict[str, Any]:
        """The totals as keyword arguments of the end events."""
        return {
            "llm_call_count": self.llm_call_count,
            "tool_call_count": len(self.tool_names),
            "tool_names": tuple(self.tool_names),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cost_usd": self.cost_usd,
            "unpriced_call_count": self.unpriced_call_count,
            "turn_count": self.turn_count,
            "duration_ms": duration_ms,
        }


class _Session:
    __slots__ = ("run_count", "started_ns", "totals")

    def __init__(self, started_ns: int) -> None:
        self.totals = _Totals()
        self.run_count = 0
        self.started_ns = started_ns


class _Run:
    __slots__ = ("agent_name", "last_finish_reason", "llm_steps", "run_id", "session", "session_id", "totals")

    def __init__(self, run_id: str, session_id: str, agent_name: str, session: _Session) -> None:
        self.run_id = run_id
        self.session_id = session_id
        self.agent_name = agent_name
        self.session = session
        self.totals = _Totals()
        self.llm_steps = 0
        self.last_finish_reason: str | None = None


class _Turn:
    __slots__ = ("index", "totals")

    def __init__(self, index: int) -> None:
        self.index = index
        self.totals = _Totals()


# Node kinds
_RUN, _TURN, _LLM, _TOOL, _OTHER = range(5)


class _Node:
    """What the aggregator remembers about a live span."""

    __slots__ = ("counted_below", "kind", "llm_parent", "run", "step", "turn")

    def __init__(self, kind: int, run: _Run | None, turn: _Turn | None) -> None:
        self.kind = kind
        self.run = run
        self.turn = turn
        self.step = 0
        self.llm_parent: _Node | None = None  # the nearest enclosing LLM-call span
        self.counted_below = False  # a descendant LLM call already counted this usage


def _int_attr(attributes: Any, key: str) -> int:
    value = attributes.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        return 0
    return max(int(value), 0)


def _str_attr(attributes: Any, key: str, default: str = "") -> str:
    value = attributes.get(key)
    return value if isinstance(value, str) else default


class UsageAggregator(SpanProcessor):
    """Per-turn, per-run and per-session totals, built from spans.

    Args:
        pricer: prices calls whose span carries no ``kit.usage.cost_usd`` (foreign spans).
        metrics: receives every finished LLM call, tool call and run.
        subscription_sessions: returns True for session ids billed by subscription (cost 0).
        clock_ns: wall clock for event timestamps of spans without times.
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
        self._nodes: dict[int, _Node] = {}
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._subscription_sessions: set[str] = set()
        self._stash = threading.local()
        self._wanted_start_events: frozenset[EventType] = frozenset(EventType)

    # --- configuration -------------------------------------------------------------
    def set_metrics(self, metrics: UsageMetrics | None) -> None:
        """Report finished calls and runs to ``metrics`` from now on."""
        self._metrics = metrics

    def set_pricer(self, pricer: Pricer | None) -> None:
        """Price foreign LLM spans with ``pricer`` from now on."""
        self._pricer = pricer

    def want_start_events(self, types: Sequence[EventType]) -> None:
        """Build start-side events only of these types (the others nobody handles)."""
        self._wanted_start_events = frozenset(types)

    def mark_subscription(self, session_id: str) -> None:
        """Calls of this session cost 0.0 when priced here (subscription billing)."""
        self._subscription_sessions.add(session_id)

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
                input_tokens=t.input_tokens,
                output_tokens=t.output_tokens,
                cache_read_tokens=t.cache_read_tokens,
                cache_write_tokens=t.cache_write_tokens,
                reasoning_tokens=t.reasoning_tokens,
                cost_usd=t.cost_usd,
                unpriced_call_count=t.unpriced_call_count,
            )

    def take_events(self, span: ReadableSpan) -> list[Event]:
        """The events this aggregator just built for ``span`` (for the next processor)."""
        stash = self._stash
        if getattr(stash, "span_id", None) != span.context.span_id:
            return []
        events: list[Event] = stash.events
        stash.span_id = None
        stash.events = []
        return events

    def open_span_count(self) -> int:
        """Live spans tracked (for tests of bounded memory)."""
        with self._lock:
            return len(self._nodes)

    # --- SpanProcessor ----------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            events = self._start(span)
        except Exception as exc:  # a processor must never raise into span creation
            self._fail("aggregator", exc)
            events = []
        self._stash.span_id = span.context.span_id
        self._stash.events = events

    def _on_ending(self, span: Span) -> None:
        try:
            attributes = self._totals_attributes(span)
            if attributes:
                set_attributes_while_ending(span, attributes)
        except Exception as exc:
            self._fail("aggregator", exc)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            events = self._end(span)
        except Exception as exc:
            self._fail("aggregator", exc)
            events = []
        self._stash.span_id = span.context.span_id
        self._stash.events = events

    def shutdown(self) -> None:
        with self._lock:
            self._nodes.clear()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    # --- internals --------------------------------------------------------------------
    def _fail(self, component: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(component, exc)
        else:
            logger.error("kit-telemetry %s failed", component, exc_info=exc)

    def _session(self, session_id: str, started_ns: int) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session(started_ns)
            if len(self._sessions) > MAX_OPEN_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def _start(self, span: Span) -> list[Event]:
        payload = PAYLOADS.staged()
        attributes = _attributes(span, payload)
        op = attributes.get(sc.GEN_AI_OPERATION_NAME)
        parent_id = parent_span_id(span)
        span_id = span.context.span_id
        started_ns = span.start_time or time.time_ns()
        wanted = self._wanted_start_events
        with self._lock:
            parent = self._nodes.get(parent_id) if parent_id is not None else None
            if op == sc.OP_INVOKE_AGENT:
                session_id = _str_attr(attributes, sc.GEN_AI_CONVERSATION_ID, _NO_SESSION)
                run_id = _str_attr(attributes, sc.KIT_RUN_ID) or _run_id(span)
                agent = _str_attr(attributes, sc.GEN_AI_AGENT_NAME, "agent")
                session = self._session(session_id, started_ns)
                session.run_count += 1
                self._nodes[span_id] = _Node(_RUN, _Run(run_id, session_id, agent, session), None)
                if not (EventType.AGENT_START in wanted or EventType.USER_INPUT in wanted):
                    return []
                prompt = payload.content if payload is not None else None
                events: list[Event] = [
                    AgentStartEvent(
                        session_id=session_id,
                        timestamp_ns=started_ns,
                        run_id=run_id,
                        agent_name=agent,
                        prompt=prompt,
                    )
                ]
                if prompt is not None:
                    events.append(
                        UserInputEvent(
                            session_id=session_id, timestamp_ns=started_ns, run_id=run_id, text=prompt
                        )
                    )
                return events
            run = parent.run if parent is not None else None
            if run is None:
                if span.name == sc.SPAN_SESSION_START and EventType.SESSION_START in wanted:
                    session_id = _str_attr(attributes, sc.GEN_AI_CONVERSATION_ID, _NO_SESSION)
                    self._session(session_id, started_ns)
                    file = attributes.get(sc.KIT_SESSION_FILE)
                    return [
                        SessionStartEvent(
                            session_id=session_id,
                            timestamp_ns=started_ns,
                            session_file=file if isinstance(file, str) else None,
                        )
                    ]
                return []
            assert parent is not None
            if sc.KIT_TURN_INDEX in attributes and op is None:
                index = _int_attr(attributes, sc.KIT_TURN_INDEX)
                run.totals.turn_count += 1
                run.session.totals.turn_count += 1
                self._nodes[span_id] = _Node(_TURN, run, _Turn(index))
                if EventType.TURN_START not in wanted:
                    return []
                return [
                    TurnStartEvent(
                        session_id=run.session_id, timestamp_ns=started_ns, run_id=run.run_id, turn_index=index
                    )
                ]
            turn = parent.turn
            if op in sc.LLM_OPERATIONS:
                node = _Node(_LLM, run, turn)
                node.llm_parent = parent if parent.kind == _LLM else parent.llm_parent
                self._nodes[span_id] = node
                return []
            if op == sc.OP_EXECUTE_TOOL:
                name = _str_attr(attributes, sc.GEN_AI_TOOL_NAME, "unknown")
                self._nodes[span_id] = _Node(_TOOL, run, turn)
                run.totals.tool_names.append(name)
                run.session.totals.tool_names.append(name)
                if turn is not None:
                    turn.totals.tool_names.append(name)
                if EventType.TOOL_CALL not in wanted:
                    return []
                call_id = attributes.get(sc.GEN_AI_TOOL_CALL_ID)
                return [
                    ToolCallEvent(
                        session_id=run.session_id,
                        timestamp_ns=started_ns,
                        run_id=run.run_id,
                        tool_name=name,
                        call_id=call_id if isinstance(call_id, str) else None,
                        arguments=payload.content if payload is not None else None,
                    )
                ]
            # Any other span inside a run (HTTP, DB...): remember where it belongs, so LLM
            # and tool spans below it still find their run and turn.
            other = _Node(_OTHER, run, turn)
            other.llm_parent = parent if parent.kind == _LLM else parent.llm_parent
            self._nodes[span_id] = other
            return []

    def _end(self, span: ReadableSpan) -> list[Event]:
        span_id = span.context.span_id
        with self._lock:
            node = self._nodes.pop(span_id, None)
        payload = PAYLOADS.get(span_id)
        if node is None:
            if span.name == sc.SPAN_SESSION_END:
                return self._end_session(span, payload)
            return []
        kind = node.kind
        if kind == _LLM:
            return self._end_llm(span, node, payload)
        if kind == _TOOL:
            return self._end_tool(span, node, payload)
        if kind == _TURN:
            return self._end_turn(span, node)
        if kind == _RUN:
            return self._end_run(span, node, payload)
        return []

    def _end_llm(self, span: ReadableSpan, node: _Node, payload: SpanPayload | None) -> list[Event]:
        attributes = _attributes(span, payload)
        run = node.run
        assert run is not None
        provider = _str_attr(attributes, sc.GEN_AI_PROVIDER_NAME) or _str_attr(
            attributes, sc.GEN_AI_SYSTEM, "unknown"
        )
        model = _str_attr(attributes, sc.GEN_AI_REQUEST_MODEL) or _str_attr(
            attributes, sc.GEN_AI_RESPONSE_MODEL, "unknown"
        )
        error = span.status.status_code is StatusCode.ERROR
        outcome = _str_attr(attributes, sc.KIT_LLM_OUTCOME) or ("error" if error else "ok")
        error_type = _str_attr(attributes, sc.ERROR_TYPE) if error else ""
        duration_ms = _duration_ms(span)
        if outcome == "budget_denied":
            # Never reached the model: counted only as a denied call.
            event = LLMUsageEvent(
                session_id=run.session_id,
                timestamp_ns=span.end_time or time.time_ns(),
                run_id=run.run_id,
                provider=provider,
                model=model,
                step=-1,
                duration_ms=duration_ms,
            )
            if self._metrics is not None:
                self._metrics.record_llm_call(event, outcome=outcome, error_type=error_type)
            return []
        total_input = _int_attr(attributes, sc.GEN_AI_USAGE_INPUT_TOKENS)
        cache_read = _int_attr(attributes, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)
        cache_write = _int_attr(attributes, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS)
        output = _int_attr(attributes, sc.GEN_AI_USAGE_OUTPUT_TOKENS)
        has_usage = sc.GEN_AI_USAGE_INPUT_TOKENS in attributes or sc.GEN_AI_USAGE_OUTPUT_TOKENS in attributes
        input_tokens = max(total_input - cache_read - cache_write, 0)
        cost = attributes.get(sc.KIT_USAGE_COST_USD)
        cost_usd: float | None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and math.isfinite(cost):
            cost_usd = float(cost)
        elif has_usage and self._pricer is not None:
            cost_usd = self._pricer.cost_usd(
                provider,
                model,
                input_tokens=input_tokens,
                output_tokens=output,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                subscription=run.session_id in self._subscription_sessions,
            )
        else:
            cost_usd = None
        reasons = attributes.get(sc.GEN_AI_RESPONSE_FINISH_REASONS)
        finish_reason = reasons[0] if isinstance(reasons, (tuple, list)) and reasons else None
        response_id = attributes.get(sc.GEN_AI_RESPONSE_ID)
        with self._lock:
            if node.counted_below:
                return []  # a wrapper repeating its child's usage: counted once, below
            step = run.llm_steps
            run.llm_steps += 1
            if node.llm_parent is not None:
                node.llm_parent.counted_below = True
            event = LLMUsageEvent(
                session_id=run.session_id,
                timestamp_ns=span.end_time or time.time_ns(),
                run_id=run.run_id,
                provider=provider,
                model=model,
                step=step,
                input_tokens=input_tokens,
                output_tokens=output,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
                reasoning_tokens=_int_attr(attributes, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS),
                cost_usd=cost_usd,
                finish_reason=finish_reason if isinstance(finish_reason, str) else None,
                response_id=response_id if isinstance(response_id, str) else None,
                duration_ms=duration_ms,
            )
            run.totals.add_call(event)
            run.session.totals.add_call(event)
            if node.turn is not None:
                node.turn.totals.add_call(event)
            else:
                # Foreign spans without turn spans: one turn per LLM call.
                run.totals.turn_count += 1
                run.session.totals.turn_count += 1
            if event.finish_reason is not None:
                run.last_finish_reason = event.finish_reason
        if self._metrics is not None:
            self._metrics.record_llm_call(event, outcome=outcome, error_type=error_type)
        return [event]

    def _end_tool(self, span: ReadableSpan, node: _Node, payload: SpanPayload | None) -> list[Event]:
        attributes = _attributes(span, payload)
        run = node.run
        assert run is not None
        call_id = attributes.get(sc.GEN_AI_TOOL_CALL_ID)
        is_error = span.status.status_code is StatusCode.ERROR or attributes.get(sc.KIT_TOOL_IS_ERROR) is True
        event = ToolResultEvent(
            session_id=run.session_id,
            timestamp_ns=span.end_time or time.time_ns(),
            run_id=run.run_id,
            tool_name=_str_attr(attributes, sc.GEN_AI_TOOL_NAME, "unknown"),
            call_id=call_id if isinstance(call_id, str) else None,
            result=payload.result if payload is not None else None,
            is_error=is_error,
            duration_ms=_duration_ms(span),
        )
        if self._metrics is not None:
            self._metrics.record_tool_call(event)
        return [event]

    def _end_turn(self, span: ReadableSpan, node: _Node) -> list[Event]:
        run, turn = node.run, node.turn
        assert run is not None and turn is not None
        with self._lock:
            fields = turn.totals.fields(_duration_ms(span))
        fields["turn_count"] = 1
        return [
            TurnEndEvent(
                session_id=run.session_id,
                timestamp_ns=span.end_time or time.time_ns(),
                run_id=run.run_id,
                turn_index=turn.index,
                **fields,
            )
        ]

    def _end_run(self, span: ReadableSpan, node: _Node, payload: SpanPayload | None) -> list[Event]:
        run = node.run
        assert run is not None
        attributes = _attributes(span, payload)
        status = span.status
        error: str | None = None
        stop_reason = _str_attr(attributes, sc.KIT_RUN_STOP_REASON) or None
        if status.status_code is StatusCode.ERROR:
            error = status.description or _str_attr(attributes, sc.ERROR_TYPE) or "error"
            stop_reason = stop_reason or "error"
        with self._lock:
            fields = run.totals.fields(_duration_ms(span))
        event = AgentEndEvent(
            session_id=run.session_id,
            timestamp_ns=span.end_time or time.time_ns(),
            run_id=run.run_id,
            agent_name=run.agent_name,
            stop_reason=stop_reason or run.last_finish_reason,
            response=_as_text(payload.result) if payload is not None else None,
            error=error,
            **fields,
        )
        if payload is not None:
            payload.end_event = event
        if self._metrics is not None:
            self._metrics.record_run(event)
        return [event]

    def _end_session(self, span: ReadableSpan, payload: SpanPayload | None) -> list[Event]:
        attributes = span.attributes or {}
        session_id = _str_attr(attributes, sc.GEN_AI_CONVERSATION_ID, _NO_SESSION)
        with self._lock:
            session = self._sessions.pop(session_id, None)
            self._subscription_sessions.discard(session_id)
            if session is None:
                return []
            end_ns = span.end_time or time.time_ns()
            fields = session.totals.fields((end_ns - session.started_ns) / 1e6)
        event = SessionEndEvent(
            session_id=session_id, timestamp_ns=end_ns, run_count=session.run_count, **fields
        )
        if payload is not None:
            payload.end_event = event
        return [event]

    def _totals_attributes(self, span: Span) -> dict[str, AttributeValue]:
        """``kit.run.*`` / ``kit.session.*`` totals for a span that is ending.

        Turn totals travel on ``TurnEndEvent`` only: writing them on every turn span too
        would cost more than the rest of the turn's bookkeeping.
        """
        span_id = span.context.span_id
        with self._lock:
            node = self._nodes.get(span_id)
            if node is None:
                if span.name != sc.SPAN_SESSION_END:
                    return {}
                session_id = _str_attr(span.attributes or {}, sc.GEN_AI_CONVERSATION_ID, _NO_SESSION)
                session = self._sessions.get(session_id)
                if session is None:
                    return {}
                end_ns = span.end_time or time.time_ns()
                out = _prefixed(sc.KIT_SESSION_PREFIX, session.totals, (end_ns - session.started_ns) / 1e6)
                out[sc.KIT_SESSION_RUN_COUNT] = session.run_count
                return out
            if node.kind == _RUN:
                assert node.run is not None
                out = _prefixed(sc.KIT_RUN_PREFIX, node.run.totals, _duration_ms(span))
                out[sc.KIT_RUN_ID] = node.run.run_id
                return out
        return {}


def _attributes(span: ReadableSpan, payload: SpanPayload | None) -> Mapping[str, Any]:
    """The span's attributes: the API's plain-dict mirror for our spans, else the span's own."""
    if payload is not None and payload.attributes is not None:
        return payload.attributes
    return span.attributes or {}


def _prefixed(prefix: str, totals: _Totals, duration_ms: float) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = {}
    for key, value in totals.fields(duration_ms).items():
        out[prefix + key] = value
    return out


def _duration_ms(span: ReadableSpan) -> float:
    if span.start_time is None or span.end_time is None:
        return 0.0
    return (span.end_time - span.start_time) / 1e6


def _run_id(span: ReadableSpan) -> str:
    trace_hex = format(span.context.trace_id, "032x")
    if span.parent is None:
        return trace_hex
    return f"{trace_hex}-{span.context.span_id:016x}"


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(value)
