"""The instrumentation API: sessions, runs, turns, LLM calls and tool calls.

Each is a context manager (``with`` and ``async with``) that starts a span on entry and
ends it on exit; the spans follow the GenAI semantic conventions. Exceptions leaving a
block mark the span as an error and are re-raised unchanged. Telemetry never raises into
the agent on this path except ``BudgetExceeded``: bad input is logged and counted (raised
only with ``strict=True``).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from . import semconv as sc
from .errors import BudgetExceeded
from .events import AgentEndEvent, SessionEndEvent
from .tracing import LLM, PAYLOADS, RUN, SESSION_END, TOOL, TURN, LLMUsage, SpanPayload

if TYPE_CHECKING:
    from .state import SessionState
    from .telemetry import Telemetry

_T = TypeVar("_T")
_ROOT = Context()  # an empty context: runs and session spans start new traces

_current_session: contextvars.ContextVar[Session | None] = contextvars.ContextVar(
    "kit_telemetry_session", default=None
)
_current_run: contextvars.ContextVar[Run | None] = contextvars.ContextVar(
    "kit_telemetry_run", default=None
)
_current_turn: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "kit_telemetry_turn", default=None
)


def current_session() -> Session | None:
    """The session whose block encloses this code (follows asyncio tasks), if any."""
    return _current_session.get()


def current_run() -> Run | None:
    """The run whose block encloses this code, if any."""
    return _current_run.get()


def current_turn() -> Turn | None:
    """The turn whose block encloses this code, if any."""
    return _current_turn.get()


@contextmanager
def attach(scope: Session | Run | Turn) -> Iterator[None]:
    """Make ``scope`` current in this thread (our context and OpenTelemetry's).

    Use it in a worker thread so that ``current_run()`` works there and spans made by other
    instrumentations nest under the scope's span::

        def work(run):
            with kt.attach(run):
                ...
    """
    tokens: list[tuple[contextvars.ContextVar[Any], contextvars.Token[Any]]] = []
    otel_token = None
    if isinstance(scope, Session):
        tokens.append((_current_session, _current_session.set(scope)))
    elif isinstance(scope, Run):
        tokens.append((_current_session, _current_session.set(scope.session)))
        tokens.append((_current_run, _current_run.set(scope)))
        otel_token = context_api.attach(scope._context)
    else:
        tokens.append((_current_session, _current_session.set(scope.run.session)))
        tokens.append((_current_run, _current_run.set(scope.run)))
        tokens.append((_current_turn, _current_turn.set(scope)))
        otel_token = context_api.attach(scope._context)
    try:
        yield
    finally:
        if otel_token is not None:
            context_api.detach(otel_token)
        for var, token in reversed(tokens):
            var.reset(token)


def wrap(fn: Callable[..., _T]) -> Callable[..., _T]:
    """Bind ``fn`` to the current context, to run it in another thread.

    Each call runs in its own copy of the context captured now, so the wrapped function
    may run in several threads at once.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> _T:
        return captured.copy().run(fn, *args, **kwargs)

    return wrapped


class _SpanScope:
    """A span that is open for the length of a ``with`` block."""

    _tel: Telemetry
    _span: trace_api.Span | None
    _context: Context
    _payload: SpanPayload | None
    _ended: bool
    _var: contextvars.ContextVar[Any] | None = None
    _tokens: list[tuple[contextvars.Token[Any], object]]

    def _init_scope(self, tel: Telemetry) -> None:
        self._tel = tel
        self._span = None
        self._payload = None
        self._ended = False
        self._tokens = []

    def _open_span(
        self,
        name: str,
        parent: Context,
        attributes: dict[str, AttributeValue],
        payload: SpanPayload,
        *,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace_api.Span:
        PAYLOADS.stage(payload)
        span: trace_api.Span = self._tel._tracer.start_span(
            name, context=parent, kind=kind, attributes=attributes
        )
        PAYLOADS.bind(span.get_span_context().span_id, payload)
        self._payload = payload
        self._span = span
        self._context = trace_api.set_span_in_context(span, parent)
        return span

    def _close_span(self, exc: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        if exc is not None:
            _mark_error(span, exc)
        try:
            span.end()
        finally:  # a strict handler may raise out of end(): the payload still goes
            PAYLOADS.unbind(span.get_span_context().span_id)

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def end(self, exc: BaseException | None = None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _second_end(self) -> bool:
        if self._ended:
            self._tel._bad_input(
                f"{type(self).__name__} was ended twice; the second end is ignored"
            )
            return True
        self._ended = True
        return False

    def __enter__(self: _S) -> _S:
        self.start()
        if self._span is not None:
            self._tokens.append((context_api.attach(self._context), None))
        if self._var is not None:
            self._tokens.append((self._var.set(self), self._var))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.end(exc)
        finally:
            while self._tokens:
                token, var = self._tokens.pop()
                if var is None:
                    context_api.detach(token)
                else:
                    assert isinstance(var, contextvars.ContextVar)
                    var.reset(token)

    async def __aenter__(self: _S) -> _S:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


_S = TypeVar("_S", bound=_SpanScope)


def _mark_error(span: trace_api.Span, exc: BaseException) -> None:
    error_type = type(exc).__qualname__
    span.set_attribute(sc.ERROR_TYPE, error_type)
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {exc}"))


def _stop_reason_for(exc: BaseException) -> str:
    if isinstance(exc, BudgetExceeded):
        return "budget_exceeded"
    if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)):
        return "cancelled"
    return "error"


class Session:
    """One conversation: every span in it carries its id as ``gen_ai.conversation.id``.

    Opened with ``tel.session(...)``; its start and end are short ``kit.session.start`` and
    ``kit.session.end`` spans (the end span carries the session totals).
    """

    def __init__(
        self,
        tel: Telemetry,
        session_id: str,
        *,
        session_file: str | None = None,
        user: str | None = None,
        subscription: bool = False,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self._tel = tel
        self.session_id = session_id
        self.session_file = session_file
        self.user = user
        self.subscription = subscription
        self.attributes = dict(attributes or {})
        self.end_event: SessionEndEvent | None = None
        self._state: SessionState | None = None
        self._token: contextvars.Token[Session | None] | None = None
        self._started = False
        self._ended = False

    @property
    def state(self) -> SessionState:
        """This session's key-value store (shared by all extensions of the session)."""
        if self._state is None:
            self._state = self._tel._open_state(self)
        return self._state

    def start(self) -> None:
        """Open the session (``with`` does this)."""
        if self._started:
            return
        self._started = True
        self._tel._session_started(self)
        attributes: dict[str, AttributeValue] = {sc.GEN_AI_CONVERSATION_ID: self.session_id}
        if self.session_file is not None:
            attributes[sc.KIT_SESSION_FILE] = self.session_file
        if self.user is not None:
            attributes[sc.KIT_SESSION_USER] = self.user
        self._tel._tracer.start_span(
            sc.SPAN_SESSION_START, context=_ROOT, attributes=attributes
        ).end()

    def end(self, exc: BaseException | None = None) -> None:
        """Close the session: emits ``session_end`` with the totals, flushes its state."""
        if self._ended:
            self._tel._bad_input(f"session {self.session_id!r} was ended twice")
            return
        self._ended = True
        payload = SpanPayload(SESSION_END, self.session_id)
        span = self._tel._tracer.start_span(
            sc.SPAN_SESSION_END,
            context=_ROOT,
            attributes={sc.GEN_AI_CONVERSATION_ID: self.session_id},
        )
        PAYLOADS.bind(span.get_span_context().span_id, payload)
        if exc is not None:
            _mark_error(span, exc)
        try:
            span.end()
        finally:  # a strict handler may raise out of end(): the payload still goes
            PAYLOADS.unbind(span.get_span_context().span_id)
        if isinstance(payload.end_event, SessionEndEvent):
            self.end_event = payload.end_event
        self._tel._session_ended(self)

    def run(self, prompt: str | None = None, *, agent_name: str = "agent") -> Run:
        """A new agent run in this session (use it with ``with``)."""
        return Run(self, prompt, agent_name)

    def __enter__(self) -> Session:
        self.start()
        self._token = _current_session.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.end(exc)
        finally:
            if self._token is not None:
                _current_session.reset(self._token)
                self._token = None

    async def __aenter__(self) -> Session:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Run(_SpanScope):
    """One agent run (a prompt processed to a final answer): the root span of a trace.

    After the block exits, ``end_event`` holds the enriched ``AgentEndEvent``.
    """

    _var = _current_run

    def __init__(self, session: Session, prompt: str | None, agent_name: str) -> None:
        self._init_scope(session._tel)
        self.session = session
        self.prompt = prompt
        self.agent_name = agent_name
        self.end_event: AgentEndEvent | None = None
        self._lock = threading.Lock()
        self._next_turn = 0
        self._open_turn: Turn | None = None  # the implicit turn of run-level calls
        self._max_input_tokens = 0  # largest input so far: the next call's admission estimate
        self._stop_reason: str | None = None

    @property
    def run_id(self) -> str:
        """This run's id (the hex trace id of its span)."""
        if self._span is None:
            return ""
        return format(self._span.get_span_context().trace_id, "032x")

    def start(self) -> None:
        """Start the run's span (``with`` does this)."""
        tel = self._tel
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: self.agent_name,
            sc.GEN_AI_CONVERSATION_ID: self.session.session_id,
        }
        span = self._open_span(
            f"invoke_agent {self.agent_name}",
            _ROOT,
            attributes,
            SpanPayload(RUN, self.session.session_id, self.agent_name, content=self.prompt),
        )
        if self.prompt is not None:
            event_attributes: dict[str, AttributeValue] = {}
            if tel.capture_content:
                event_attributes[sc.EVENT_USER_INPUT_TEXT] = tel._clip(self.prompt)
            span.add_event(sc.EVENT_USER_INPUT, event_attributes)

    def end(self, exc: BaseException | None = None) -> None:
        """End the run (``with`` does this); closes an implicit turn that is still open."""
        if self._second_end():
            return
        with self._lock:
            open_turn, self._open_turn = self._open_turn, None
        if open_turn is not None:
            open_turn.end()
        span = self._span
        if span is not None:
            stop_reason = _stop_reason_for(exc) if exc is not None else self._stop_reason
            if stop_reason is not None:
                span.set_attribute(sc.KIT_RUN_STOP_REASON, stop_reason)
                assert self._payload is not None
                self._payload.stop_reason = stop_reason
            if (
                self._tel.capture_content
                and self._payload is not None
                and self._payload.result is not None
            ):
                span.set_attribute(sc.KIT_RUN_RESPONSE, self._tel._clip(str(self._payload.result)))
        self._close_span(exc)
        if self._payload is not None and isinstance(self._payload.end_event, AgentEndEvent):
            self.end_event = self._payload.end_event

    def set_response(self, response: str) -> None:
        """The run's final answer; becomes ``AgentEndEvent.response``."""
        if self._payload is not None:
            self._payload.result = response

    def turn(self) -> Turn:
        """A new explicit turn of this run."""
        with self._lock:
            index = self._next_turn
            self._next_turn += 1
        return Turn(self, index)

    def llm_call(
        self,
        provider: str,
        model: str,
        *,
        max_tokens: int | None = None,
        estimated_input_tokens: int | None = None,
    ) -> LLMCall:
        """An LLM call directly on the run: it opens an implicit turn (closing the previous)."""
        with self._lock:
            previous, self._open_turn = self._open_turn, None
        if previous is not None:
            previous.end()
        turn = self.turn()
        turn.start()
        with self._lock:
            self._open_turn = turn
        return turn.llm_call(
            provider, model, max_tokens=max_tokens, estimated_input_tokens=estimated_input_tokens
        )

    def tool_call(
        self, name: str, *, call_id: str | None = None, arguments: Any = None
    ) -> ToolCall:
        """A tool call directly on the run: it joins the open turn (opening one if none is)."""
        with self._lock:
            turn = self._open_turn
        if turn is None:
            turn = self.turn()
            turn.start()
            with self._lock:
                self._open_turn = turn
        return turn.tool_call(name, call_id=call_id, arguments=arguments)

    def _note_input(self, total_input_tokens: int) -> None:
        with self._lock:
            self._max_input_tokens = max(self._max_input_tokens, total_input_tokens)


class Turn(_SpanScope):
    """One iteration of the agent loop: a ``turn {index}`` child span of the run."""

    _var = _current_turn

    def __init__(self, run: Run, index: int) -> None:
        self._init_scope(run._tel)
        self.run = run
        self.index = index

    def start(self) -> None:
        """Start the turn's span (``with`` does this)."""
        run = self.run
        attributes: dict[str, AttributeValue] = {
            sc.KIT_TURN_INDEX: self.index,
            sc.GEN_AI_CONVERSATION_ID: run.session.session_id,
        }
        self._open_span(
            f"turn {self.index}",
            run._context,
            attributes,
            SpanPayload(TURN, run.session.session_id, detail=self.index),
        )

    def end(self, exc: BaseException | None = None) -> None:
        """End the turn (``with`` does this)."""
        if self._second_end():
            return
        self._close_span(exc)

    def llm_call(
        self,
        provider: str,
        model: str,
        *,
        max_tokens: int | None = None,
        estimated_input_tokens: int | None = None,
    ) -> LLMCall:
        """A ``chat {model}`` span; entering it is where budgets admit or refuse the call."""
        return LLMCall(self, provider, model, max_tokens, estimated_input_tokens)

    def tool_call(
        self, name: str, *, call_id: str | None = None, arguments: Any = None
    ) -> ToolCall:
        """An ``execute_tool {name}`` span."""
        return ToolCall(self, name, call_id, arguments)


_USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)


class LLMCall(_SpanScope):
    """One request to a model: a ``chat {model}`` CLIENT span."""

    def __init__(
        self,
        turn: Turn,
        provider: str,
        model: str,
        max_tokens: int | None,
        estimated_input_tokens: int | None,
    ) -> None:
        self._init_scope(turn._tel)
        self.turn = turn
        tel = self._tel
        if not isinstance(provider, str) or not provider:
            tel._bad_input(f"llm_call provider must be a non-empty string, got {provider!r}")
            provider = str(provider) if provider else "unknown"
        if not isinstance(model, str) or not model:
            tel._bad_input(f"llm_call model must be a non-empty string, got {model!r}")
            model = str(model) if model else "unknown"
        self.provider = provider
        self.model = model
        self.max_tokens = max_tokens
        self.estimated_input_tokens = estimated_input_tokens
        self.usage: dict[str, int] | None = None
        self.cost_usd: float | None = None
        self._given_cost: float | None = None
        self._finish_reason: str | None = None
        self._response_id: str | None = None
        self._admission: object | None = None

    def start(self) -> None:
        """Admit the call against the budgets and start its span (``with`` does this).

        Raises:
            BudgetExceeded: a budget refused the call; the model must not be called.
        """
        run = self.turn.run
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_PROVIDER_NAME: self.provider,
            sc.GEN_AI_REQUEST_MODEL: self.model,
            sc.GEN_AI_CONVERSATION_ID: run.session.session_id,
        }
        if self.max_tokens is not None:
            attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = self.max_tokens
        payload = SpanPayload(
            LLM, run.session.session_id, self.model, self.provider, parent=self.turn._payload
        )
        span = self._open_span(
            f"chat {self.model}", self.turn._context, attributes, payload, kind=SpanKind.CLIENT
        )
        budgets = self._tel._budgets
        if budgets is None:
            return
        try:
            self._admission = budgets.admit_llm_call(self)
        except BudgetExceeded as exc:
            span.set_attributes(
                {sc.KIT_LLM_OUTCOME: "budget_denied", sc.KIT_BUDGET_DENIED: exc.budget}
            )
            assert self._payload is not None
            self._payload.outcome = "budget_denied"
            self._ended = True
            self._close_span(exc)
            run._stop_reason = "budget_exceeded"
            raise

    def record_usage(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        finish_reason: str | None = None,
        response_id: str | None = None,
        cost_usd: float | None = None,
    ) -> None:
        """The call's usage. Token kinds are disjoint (``input_tokens`` excludes cached tokens).

        A second call replaces the first. ``cost_usd`` given here wins over the price table.
        Bad values are reported (raised when strict) and leave earlier usage as it was.
        """
        tel = self._tel
        if self._ended:
            tel._bad_input(f"record_usage on {self.model!r} after the call ended; usage ignored")
            return
        values = (
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
        )
        for name, value in zip(_USAGE_FIELDS, values, strict=True):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                tel._bad_input(
                    f"record_usage {name} must be a non-negative int, got {value!r}; usage ignored"
                )
                return
        if reasoning_tokens > output_tokens:
            tel._bad_input(
                f"record_usage reasoning_tokens ({reasoning_tokens}) are part of output_tokens "
                f"({output_tokens}) and cannot exceed them; usage ignored"
            )
            return
        if cost_usd is not None and (
            isinstance(cost_usd, bool)
            or not isinstance(cost_usd, (int, float))
            or not math.isfinite(cost_usd)
            or cost_usd < 0
        ):
            tel._bad_input(
                f"record_usage cost_usd must be a non-negative number or None, got {cost_usd!r}"
            )
            return
        self.usage = dict(zip(_USAGE_FIELDS, values, strict=True))
        self._given_cost = float(cost_usd) if cost_usd is not None else None
        self._finish_reason = finish_reason
        self._response_id = response_id

    def end(self, exc: BaseException | None = None) -> None:
        """End the call (``with`` does this): usage onto the span, budgets settled."""
        if self._second_end():
            return
        span = self._span
        if span is None:
            return
        tel = self._tel
        usage = self.usage
        run = self.turn.run
        outcome = "ok"
        if exc is not None:
            outcome = (
                "cancelled"
                if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt))
                else "error"
            )
        if usage is not None:
            cache_read = usage["cache_read_tokens"]
            cache_write = usage["cache_write_tokens"]
            total_input = usage["input_tokens"] + cache_read + cache_write
            cost = self._given_cost
            if cost is None:
                cost = tel._price(run.session, self.provider, self.model, usage)
            self.cost_usd = cost
            attributes: dict[str, AttributeValue] = {
                sc.GEN_AI_USAGE_INPUT_TOKENS: total_input,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage["output_tokens"],
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: cache_read,
                sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: cache_write,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: usage["reasoning_tokens"],
                sc.KIT_LLM_OUTCOME: outcome,
            }
            if cost is not None:
                attributes[sc.KIT_USAGE_COST_USD] = cost
            if self._finish_reason is not None:
                attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (self._finish_reason,)
            if self._response_id is not None:
                attributes[sc.GEN_AI_RESPONSE_ID] = self._response_id
            span.set_attributes(attributes)
            run._note_input(total_input)
        else:
            span.set_attribute(sc.KIT_LLM_OUTCOME, outcome)
        payload = self._payload
        assert payload is not None
        payload.outcome = outcome
        if usage is not None:
            payload.usage = LLMUsage(
                input_tokens=usage["input_tokens"],
                output_tokens=usage["output_tokens"],
                cache_read_tokens=usage["cache_read_tokens"],
                cache_write_tokens=usage["cache_write_tokens"],
                reasoning_tokens=usage["reasoning_tokens"],
                cost_usd=self.cost_usd,
                finish_reason=self._finish_reason,
                response_id=self._response_id,
            )
        budgets = tel._budgets
        if budgets is not None and self._admission is not None:
            budgets.finish_llm_call(self, self._admission, exc)
        self._close_span(exc)


class ToolCall(_SpanScope):
    """One tool execution: an ``execute_tool {name}`` span."""

    def __init__(self, turn: Turn, name: str, call_id: str | None, arguments: Any) -> None:
        self._init_scope(turn._tel)
        self.turn = turn
        if not isinstance(name, str) or not name:
            turn._tel._bad_input(f"tool_call name must be a non-empty string, got {name!r}")
            name = str(name) if name else "unknown"
        self.name = name
        self.call_id = call_id
        self.arguments = arguments
        self.result: Any = None
        self.is_error = False
        self._admission: object | None = None

    def start(self) -> None:
        """Start the tool's span (``with`` does this); run budgets may refuse it.

        Raises:
            BudgetExceeded: a run budget on tool calls refused it.
        """
        tel = self._tel
        turn = self.turn
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: self.name,
            sc.GEN_AI_CONVERSATION_ID: turn.run.session.session_id,
        }
        if self.call_id is not None:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = self.call_id
        if tel.capture_content and self.arguments is not None:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = tel._clip(_to_text(self.arguments))
        span = self._open_span(
            f"execute_tool {self.name}",
            turn._context,
            attributes,
            SpanPayload(
                TOOL,
                turn.run.session.session_id,
                self.name,
                self.call_id,
                self.arguments,
                turn._payload,
            ),
        )
        budgets = tel._budgets
        if budgets is None:
            return
        try:
            self._admission = budgets.admit_tool_call(self)
        except BudgetExceeded as exc:
            span.set_attribute(sc.KIT_BUDGET_DENIED, exc.budget)
            self._ended = True
            self._close_span(exc)
            turn.run._stop_reason = "budget_exceeded"
            raise

    def set_result(self, result: Any, *, is_error: bool = False) -> None:
        """The tool's result; ``is_error`` marks a failed call (it still counts)."""
        if self._ended:
            self._tel._bad_input(f"set_result on tool {self.name!r} after it ended; ignored")
            return
        self.result = result
        self.is_error = bool(is_error)
        if self._payload is not None:
            self._payload.result = result

    def end(self, exc: BaseException | None = None) -> None:
        """End the tool call (``with`` does this)."""
        if self._second_end():
            return
        span = self._span
        if span is None:
            return
        tel = self._tel
        if self.is_error or exc is not None:
            span.set_attribute(sc.KIT_TOOL_IS_ERROR, True)
            if self._payload is not None:
                self._payload.is_error = True
            if exc is None:
                span.set_attribute(sc.ERROR_TYPE, "tool_error")
                span.set_status(Status(StatusCode.ERROR, "tool reported an error"))
        if tel.capture_content and self.result is not None:
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, tel._clip(_to_text(self.result)))
        budgets = tel._budgets
        if budgets is not None and self._admission is not None:
            budgets.finish_tool_call(self._admission)
        self._close_span(exc)


def _to_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)
