"""``Run`` (one agent run, the root span of a trace) and ``Turn`` (one loop iteration)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..events import AgentEndEvent
from ..tracing import RUN, TURN, SpanPayload
from ..validation import check_content, check_required_text
from .calls import LLMCall, ToolCall
from .context import ROOT_CONTEXT, _current_run, _current_turn
from .scope import SpanScope, stop_reason_for

if TYPE_CHECKING:
    from .session import Session


class Run(SpanScope):
    """One agent run (a prompt processed to a final answer): the root span of a trace.

    After the block exits, ``end_event`` holds the enriched ``AgentEndEvent``.
    """

    _var = _current_run

    def __init__(self, session: Session, prompt: str | None, agent_name: str) -> None:
        runtime = session._runtime
        self._init_scope(runtime)
        self.session = session
        self.prompt = check_content(runtime.errors, "run.prompt", prompt)
        self.agent_name = check_required_text(runtime.errors, "run.agent_name", agent_name)
        self.end_event: AgentEndEvent | None = None
        self._lock = threading.Lock()
        self._next_turn = 0
        self._open_turn: Turn | None = None  # the implicit turn of run-level calls
        self._largest_input_tokens = 0
        self._random_id: str | None = None
        # Why the run stopped, when the API knows better than the last finish reason.
        self.stop_reason: str | None = None

    @property
    def run_id(self) -> str:
        """This run's id: the hex trace id of its span (or a random one when the span does
        not record, with ``OTEL_SDK_DISABLED``, so run budgets still count per run)."""
        if self._span is None:
            return ""
        context = self._span.get_span_context()
        if not context.is_valid:
            if self._random_id is None:
                self._random_id = uuid.uuid4().hex
            return self._random_id
        return format(context.trace_id, "032x")

    def start(self) -> None:
        """Start the run's span (``with`` does this)."""
        runtime = self._runtime
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: self.agent_name,
            sc.GEN_AI_CONVERSATION_ID: self.session.session_id,
        }
        span = self._open_span(
            f"invoke_agent {self.agent_name}",
            ROOT_CONTEXT,
            attributes,
            SpanPayload(RUN, self.session.session_id, self.agent_name, content=self.prompt),
        )
        if self.prompt is not None:
            event_attributes: dict[str, AttributeValue] = {}
            if runtime.capture_content:
                event_attributes[sc.EVENT_USER_INPUT_TEXT] = runtime.clip(self.prompt)
            span.add_event(sc.EVENT_USER_INPUT, event_attributes)

    def end(self, exc: BaseException | None = None) -> None:
        """End the run (``with`` does this); closes an implicit turn that is still open."""
        if self._second_end():
            return
        with self._lock:
            open_turn, self._open_turn = self._open_turn, None
        if open_turn is not None:
            open_turn.end()
        span, payload = self._span, self._payload
        end_ns = time.time_ns()
        if span is not None and payload is not None:
            runtime = self._runtime
            stop_reason = stop_reason_for(exc) if exc is not None else self.stop_reason
            if stop_reason is not None:
                payload.stop_reason = stop_reason
            # Our own span ends through this code: its totals are set while it is open.
            duration_ms = (end_ns - self._start_ns) / 1e6
            span.set_attributes(
                runtime.run_attributes(payload, duration_ms, failed=exc is not None)
            )
            if runtime.capture_content and payload.result is not None:
                span.set_attribute(sc.KIT_RUN_RESPONSE, runtime.clip(str(payload.result)))
        self._close_span(exc, end_ns)
        if payload is not None and isinstance(payload.end_event, AgentEndEvent):
            self.end_event = payload.end_event

    def set_response(self, response: str) -> None:
        """The run's final answer; becomes ``AgentEndEvent.response``."""
        if self._payload is not None:
            self._payload.result = check_content(
                self._runtime.errors, "set_response.response", response
            )

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

    @property
    def largest_input_tokens(self) -> int:
        """The largest input (every kind) of this run's calls so far.

        A call that comes without an input estimate is admitted with this one.
        """
        return self._largest_input_tokens

    def note_input_tokens(self, total_input_tokens: int) -> None:
        """An LLM call of this run used ``total_input_tokens`` input tokens."""
        with self._lock:
            if total_input_tokens > self._largest_input_tokens:
                self._largest_input_tokens = total_input_tokens


class Turn(SpanScope):
    """One iteration of the agent loop: a ``turn {index}`` child span of the run."""

    _var = _current_turn

    def __init__(self, run: Run, index: int) -> None:
        self._init_scope(run._runtime)
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
            run.context,
            attributes,
            SpanPayload(TURN, run.session.session_id, detail=self.index, parent=run._payload),
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
