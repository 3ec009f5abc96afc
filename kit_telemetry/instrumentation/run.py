"""``Run`` (one agent run, the root span of a trace) and ``Turn`` (one loop iteration)."""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from opentelemetry.util.types import AttributeValue

from .. import messages
from .. import semconv as sc
from ..decisions import Handled, Transform
from ..events import AgentEndEvent
from ..tools import ToolOutcome
from ..tracing import RUN, TURN, SpanPayload
from ..validation.checks import (
    check_content,
    check_messages,
    check_required_text,
    check_text,
    to_text,
)
from .calls import LLMCall, ToolCall, provider_attributes
from .context import ROOT_CONTEXT, _current_run, _current_tool, _current_turn
from .scope import SpanScope, stop_reason_for
from .tools import acall_tool, call_tool

if TYPE_CHECKING:
    from .session import Session


class Run(SpanScope):
    """One agent run (a prompt processed to a final answer): the root span of a trace.

    After the block exits, ``end_event`` holds the enriched ``AgentEndEvent``.

    A run started inside a ``tool_call`` block is a sub-agent of that call's run
    (``parent_run``): its span is a child of the tool's span, in the same trace, and the
    parent's totals include its calls.

    Once started, ``prompt`` is the prompt the agent must send (a ``user_input`` handler
    may have transformed it), and ``handled`` is True when an extension consumed the
    input: the agent should then not call the model (``handled_reason`` says why).
    """

    _var = _current_run

    def __init__(
        self,
        session: Session,
        prompt: str | None,
        agent_name: str,
        *,
        agent_id: str | None = None,
        provider: str | None = None,
        system_instructions: str | None = None,
    ) -> None:
        runtime = session._runtime
        self._init_scope(runtime)
        self.session = session
        # Events carry text: a message list becomes its JSON text (the span keeps messages).
        self._prompt_given: object = prompt
        self.prompt = check_content(runtime.errors, "run.prompt", prompt)
        self.agent_id = check_text(runtime.errors, "run.agent_id", agent_id)
        self.provider = check_text(runtime.errors, "run.provider", provider)
        self.system_instructions = check_content(
            runtime.errors, "run.system_instructions", system_instructions
        )
        self._call_provider: str | None = None  # the first LLM call's, for a run without one
        self.agent_name = check_required_text(runtime.errors, "run.agent_name", agent_name)
        self.end_event: AgentEndEvent | None = None
        self._lock = threading.Lock()
        self._next_turn = 0
        self._open_turn: Turn | None = None  # the implicit turn of run-level calls
        self._largest_input_tokens = 0
        self._id: str | None = None  # fixed once the span has started
        # Why the run stopped, when the API knows better than the last finish reason.
        self.stop_reason: str | None = None
        self.handled = False
        self.handled_reason = ""
        self.parent_run: Run | None = None  # set at start for a sub-agent run
        self._llm_steps = 0

    @property
    def run_id(self) -> str:
        """This run's id: the hex trace id of its span (or a random one when the span does
        not record, with ``OTEL_SDK_DISABLED``, so run budgets still count per run)."""
        if self._id is not None:
            return self._id
        if self._span is None:
            return ""
        context = self._span.get_span_context()
        if not context.is_valid:
            self._id = uuid.uuid4().hex
        elif self.parent_run is not None:  # shares its parent's trace: the span tells it apart
            self._id = f"{context.trace_id:032x}-{context.span_id:016x}"
        else:
            self._id = format(context.trace_id, "032x")
        return self._id

    @property
    def root_run_id(self) -> str:
        """The id of the outermost run this one is a sub-agent of (its own, if none)."""
        run = self
        while run.parent_run is not None:
            run = run.parent_run
        return run.run_id

    def start(self) -> None:
        """Start the run's span (``with`` does this)."""
        runtime = self._runtime
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_INVOKE_AGENT,
            sc.GEN_AI_AGENT_NAME: self.agent_name,
            sc.GEN_AI_CONVERSATION_ID: self.session.session_id,
        }
        if self.agent_id is not None:
            attributes[sc.GEN_AI_AGENT_ID] = self.agent_id
        if self.provider is not None:
            attributes.update(provider_attributes(self.provider, legacy=runtime.legacy_names))
        if runtime.capture_content:
            attributes.update(self._input_content())
        tool = _current_tool.get()
        parent_context, parent_payload = ROOT_CONTEXT, None
        if tool is not None and tool.span is not None:
            self.parent_run = tool.turn.run
            parent_context, parent_payload = tool.context, tool._payload
        span = self._open_span(
            f"invoke_agent {self.agent_name}",
            parent_context,
            attributes,
            SpanPayload(
                RUN,
                self.session.session_id,
                self.agent_name,
                content=self.prompt,
                parent=parent_payload,
            ),
        )
        self._take_input_verdict()
        if self.prompt is not None:
            event_attributes: dict[str, AttributeValue] = {}
            if runtime.legacy_names:
                text = runtime.content(self.prompt, sc.EVENT_USER_INPUT_TEXT)
                if text is not None:
                    event_attributes[sc.EVENT_USER_INPUT_TEXT] = text
            span.add_event(sc.EVENT_USER_INPUT, event_attributes)

    def _input_content(self) -> dict[str, AttributeValue]:
        runtime = self._runtime
        out: dict[str, AttributeValue] = {}
        if self._prompt_given is not None:
            given = messages.input_messages(
                self._prompt_given, runtime.redactor(sc.GEN_AI_INPUT_MESSAGES)
            )
            if given is not None:
                out[sc.GEN_AI_INPUT_MESSAGES] = given
        if self.system_instructions is not None:
            instructions = messages.system_instructions(
                self.system_instructions, runtime.redactor(sc.GEN_AI_SYSTEM_INSTRUCTIONS)
            )
            if instructions is not None:
                out[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = instructions
        return out

    def _output_content(self, result: object, failed: bool) -> dict[str, AttributeValue]:
        runtime = self._runtime
        out: dict[str, AttributeValue] = {}
        finish_reason = "error" if failed else "stop"
        answer = messages.output_messages(
            result, finish_reason, runtime.redactor(sc.GEN_AI_OUTPUT_MESSAGES)
        )
        if answer is not None:
            out[sc.GEN_AI_OUTPUT_MESSAGES] = answer
        if runtime.legacy_names:
            text = runtime.content(str(result), sc.KIT_RUN_RESPONSE)
            if text is not None:
                out[sc.KIT_RUN_RESPONSE] = text
        return out

    def note_provider(self, provider: str) -> None:
        """An LLM call of this run went to ``provider``: the run's provider if none was given."""
        with self._lock:
            if self._call_provider is None:
                self._call_provider = provider

    def _take_input_verdict(self) -> None:
        """Apply what the ``user_input`` handlers decided at the span's start."""
        payload = self._payload
        verdict = payload.verdict if payload is not None else None
        if verdict is None or payload is None:
            return
        if isinstance(verdict.change, Transform):
            self.prompt = payload.content = self._prompt_given = verdict.change.text
            span = self._span
            if self._runtime.capture_content and span is not None:
                # The span shows the prompt the model is given, not the one typed.
                span.set_attributes(self._input_content())
        if isinstance(verdict.decision, Handled):
            self.handled = True
            self.handled_reason = verdict.decision.reason
        payload.verdict = None

    def next_llm_step(self) -> int:
        """The step of this run's next LLM call (0 for the first), as ``llm_request`` has it."""
        with self._lock:
            step = self._llm_steps
            self._llm_steps += 1
        return step

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
            stop = runtime.run_stopped(self.run_id)
            if stop is not None:
                stop_reason = "stopped"
                reason = getattr(stop.decision, "reason", "")
                payload.error = reason or f"stopped by extension {stop.extension!r}"
            if stop_reason is not None:
                payload.stop_reason = stop_reason
            # Our own span ends through this code: its totals are set while it is open.
            duration_ms = (end_ns - self._start_ns) / 1e6
            span.set_attributes(
                runtime.run_attributes(payload, duration_ms, failed=exc is not None)
            )
            if self.provider is None:
                with self._lock:
                    provider = self._call_provider or sc.OTHER_VALUE
                span.set_attributes(provider_attributes(provider, legacy=runtime.legacy_names))
            if runtime.capture_content and payload.result is not None:
                span.set_attributes(self._output_content(payload.result, exc is not None))
            if runtime.capture_content and payload.messages:
                span.set_attribute(
                    sc.KIT_RUN_MESSAGES, runtime.clip(to_text(list(payload.messages)))
                )
        self._close_span(exc, end_ns)
        if payload is not None and isinstance(payload.end_event, AgentEndEvent):
            self.end_event = payload.end_event

    def set_response(self, response: str) -> None:
        """The run's final answer; becomes ``AgentEndEvent.response``."""
        if self._payload is not None:
            self._payload.result = check_content(
                self._runtime.errors, "set_response.response", response
            )

    def record_messages(self, messages: Any) -> None:
        """The run's conversation as the agent keeps it; becomes ``AgentEndEvent.messages``.

        Handed to handlers in-process as given (a tuple of its items); on the run span only
        under content capture, as JSON text. A second call replaces the first; anything
        but a list or tuple is reported and ignored.
        """
        given = check_messages(self._runtime.errors, "record_messages.messages", messages)
        if given is not None and self._payload is not None:
            self._payload.messages = given

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
        server_address: str | None = None,
        server_port: int | None = None,
        request: Any = None,
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
            provider,
            model,
            max_tokens=max_tokens,
            estimated_input_tokens=estimated_input_tokens,
            server_address=server_address,
            server_port=server_port,
            request=request,
        )

    def tool_call(
        self,
        name: str,
        *,
        call_id: str | None = None,
        arguments: Any = None,
        tool_type: str | None = None,
    ) -> ToolCall:
        """A tool call directly on the run: it joins the open turn (opening one if none is)."""
        with self._lock:
            turn = self._open_turn
        if turn is None:
            turn = self.turn()
            turn.start()
            with self._lock:
                self._open_turn = turn
        return turn.tool_call(name, call_id=call_id, arguments=arguments, tool_type=tool_type)

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
        span, payload = self._span, self._payload
        runtime = self._runtime
        if (
            span is not None
            and payload is not None
            and payload.result is not None
            and runtime.capture_content
        ):
            span.set_attribute(sc.KIT_TURN_MESSAGE, runtime.clip(to_text(payload.result)))
        self._close_span(exc)

    def set_message(self, message: Any) -> None:
        """The turn's message as the agent keeps it; becomes ``TurnEndEvent.message``.

        Handed to handlers in-process as given; on the turn span only under content capture.
        """
        if self._payload is not None:
            self._payload.result = message

    def llm_call(
        self,
        provider: str,
        model: str,
        *,
        max_tokens: int | None = None,
        estimated_input_tokens: int | None = None,
        server_address: str | None = None,
        server_port: int | None = None,
        request: Any = None,
    ) -> LLMCall:
        """A ``chat {model}`` span; entering it is where budgets admit or refuse the call.

        ``server_address`` and ``server_port`` name the model's endpoint (``server.*``).
        ``request`` (the messages and tools sent, any JSON-like value) is only compared by
        ``max_repeats`` loop guards, to stop a run sending the same request again; it is
        never recorded.
        """
        return LLMCall(
            self,
            provider,
            model,
            max_tokens,
            estimated_input_tokens,
            request,
            server_address=server_address,
            server_port=server_port,
        )

    def tool_call(
        self,
        name: str,
        *,
        call_id: str | None = None,
        arguments: Any = None,
        tool_type: str | None = None,
    ) -> ToolCall:
        """An ``execute_tool {name}`` span; ``tool_type`` is ``gen_ai.tool.type``
        (``function``, ``extension`` or ``datastore``)."""
        return ToolCall(self, name, call_id, arguments, tool_type=tool_type)

    def call_tool(
        self, name: str, arguments: Any = None, call_id: str | None = None
    ) -> ToolOutcome:
        """Run an extension's tool in an ``execute_tool`` span, with every decision point.

        An unknown ``name``, arguments that break the tool's schema, or a handler that
        raises give ``ToolOutcome(<message>, is_error=True)`` for the model to read.

        Raises:
            Blocked: the run was stopped, or a ``tool_call`` handler blocked the call.
            BudgetExceeded: a run budget on tool calls refused it.
        """
        name, call_id = self._tool_target(name, call_id)
        return call_tool(self, name, {} if arguments is None else arguments, call_id)

    async def acall_tool(
        self, name: str, arguments: Any = None, call_id: str | None = None
    ) -> ToolOutcome:
        """``call_tool`` for async agents: an async tool handler runs on the caller's loop."""
        name, call_id = self._tool_target(name, call_id)
        return await acall_tool(self, name, {} if arguments is None else arguments, call_id)

    def _tool_target(self, name: object, call_id: object) -> tuple[str, str | None]:
        """``call_tool``'s name and call id, checked by the table's ``call_tool`` rows."""
        errors = self._runtime.errors
        return (
            check_required_text(errors, "call_tool.name", name),
            check_text(errors, "call_tool.call_id", call_id),
        )
