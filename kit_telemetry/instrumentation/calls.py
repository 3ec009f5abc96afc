"""``LLMCall`` (one request to a model) and ``ToolCall`` (one tool execution)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..budgets.calls import Admission, CallScope, LLMRequest
from ..errors import BudgetExceeded
from ..tokens import TOKEN_KINDS, TokenUsage
from ..tracing import LLM, TOOL, LLMUsage, SpanPayload
from ..validation import (
    check_amount,
    check_count,
    check_flag,
    check_required_text,
    check_text,
    to_text,
)
from .scope import SpanScope, is_cancellation

if TYPE_CHECKING:
    from .run import Run, Turn


_USAGE_FIELDS = TOKEN_KINDS
# Their rows in the validation table.
_USAGE_PARAMETERS = tuple(f"record_usage.{name}" for name in TOKEN_KINDS)


class LLMCall(SpanScope):
    """One request to a model: a ``chat {model}`` CLIENT span."""

    def __init__(
        self,
        turn: Turn,
        provider: str,
        model: str,
        max_tokens: int | None,
        estimated_input_tokens: int | None,
    ) -> None:
        self._init_scope(turn._runtime)
        self.turn = turn
        errors = self._runtime.errors
        self.provider = check_required_text(errors, "llm_call.provider", provider)
        self.model = check_required_text(errors, "llm_call.model", model)
        self.max_tokens = check_count(errors, "llm_call.max_tokens", max_tokens)
        self.estimated_input_tokens = check_count(
            errors, "llm_call.estimated_input_tokens", estimated_input_tokens
        )
        self.tokens: TokenUsage | None = None
        self.cost_usd: float | None = None
        self._given_cost: float | None = None
        self._finish_reason: str | None = None
        self._response_id: str | None = None
        self._admission: Admission | None = None

    @property
    def usage(self) -> dict[str, int] | None:
        """The usage recorded so far, as ``record_usage``'s token keywords (None: none yet)."""
        tokens = self.tokens
        if tokens is None:
            return None
        return {name: getattr(tokens, name) for name in _USAGE_FIELDS}

    def start(self) -> None:
        """Admit the call against the budgets, then start its span (``with`` does this).

        Admission comes first, so the span measures the model call alone.

        A ``max_tokens`` or ``estimated_input_tokens`` that was no count (see
        :mod:`kit_telemetry.validation`) is treated as not given: no output is reserved for
        an unknown ``max_tokens`` and the run's largest input so far stands in for an
        unknown estimate. The call is still checked against every budget (an exhausted one
        refuses it) and its actual usage is charged in full.

        Raises:
            BudgetExceeded: a budget refused the call; the model must not be called.
        """
        run = self.turn.run
        denied: BudgetExceeded | None = None
        budgets = self._runtime.budgets
        if budgets is not None:
            request = LLMRequest(
                scope=call_scope(run, self.provider, self.model),
                max_tokens=self.max_tokens or 0,
                estimated_input_tokens=(
                    self.estimated_input_tokens
                    if self.estimated_input_tokens is not None
                    else run.largest_input_tokens
                ),
                subscription=run.session.subscription,
            )
            try:
                self._admission = budgets.admit_llm_call(request)
            except BudgetExceeded as exc:
                denied = exc
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_PROVIDER_NAME: self.provider,
            sc.GEN_AI_REQUEST_MODEL: self.model,
            sc.GEN_AI_CONVERSATION_ID: run.session.session_id,
        }
        if self.max_tokens is not None:
            attributes[sc.GEN_AI_REQUEST_MAX_TOKENS] = self.max_tokens
        if denied is not None:
            attributes[sc.KIT_LLM_OUTCOME] = "budget_denied"
            attributes[sc.KIT_BUDGET_DENIED] = denied.budget
        payload = SpanPayload(
            LLM, run.session.session_id, self.model, self.provider, parent=self.turn._payload
        )
        self._open_span(
            f"chat {self.model}", self.turn.context, attributes, payload, kind=SpanKind.CLIENT
        )
        if denied is not None:
            payload.outcome = "budget_denied"
            self._ended = True
            self._close_span(denied)
            run.stop_reason = "budget_exceeded"
            raise denied

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
        errors = self._runtime.errors
        if self._ended:
            errors.bad_input(
                "record_usage",
                f"record_usage on {self.model!r} after the call ended; usage ignored",
            )
            return
        values = (
            input_tokens,
            output_tokens,
            cache_read_tokens,
            cache_write_tokens,
            reasoning_tokens,
        )
        for field, value in zip(_USAGE_PARAMETERS, values, strict=True):
            if check_count(errors, field, value) is None:
                return
        if reasoning_tokens > output_tokens:
            errors.bad_input(
                "record_usage.reasoning_tokens",
                f"record_usage.reasoning_tokens: {reasoning_tokens} is more than output_tokens "
                f"({output_tokens}), of which it is a part; usage ignored",
            )
            return
        cost = check_amount(errors, "record_usage.cost_usd", cost_usd)
        if cost is None and cost_usd is not None:
            return
        finish_reason = check_text(errors, "record_usage.finish_reason", finish_reason)
        response_id = check_text(errors, "record_usage.response_id", response_id)
        self.tokens = TokenUsage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
        )
        self._given_cost = cost
        self._finish_reason = finish_reason
        self._response_id = response_id

    def end(self, exc: BaseException | None = None) -> None:
        """End the call (``with`` does this): usage onto the span, budgets settled."""
        end_ns = time.time_ns()  # the model call ends here; pricing and settling are not it
        if self._second_end():
            return
        span, payload = self._span, self._payload
        if span is None or payload is None:
            return
        runtime = self._runtime
        tokens = self.tokens
        run = self.turn.run
        outcome = "ok"
        if exc is not None:
            outcome = "cancelled" if is_cancellation(exc) else "error"
        payload.outcome = outcome
        if tokens is None:
            span.set_attribute(sc.KIT_LLM_OUTCOME, outcome)
        else:
            cost = self._given_cost
            if cost is None:
                cost = runtime.price(
                    self.provider, self.model, tokens, subscription=run.session.subscription
                )
            self.cost_usd = cost
            span.set_attributes(self._usage_attributes(tokens, cost, outcome))
            run.note_input_tokens(tokens.total_input)
            payload.usage = LLMUsage(
                tokens=tokens,
                cost_usd=cost,
                finish_reason=self._finish_reason,
                response_id=self._response_id,
            )
        admission = self._admission
        if runtime.budgets is not None and admission is not None:
            if tokens is None and exc is not None:
                runtime.budgets.release(admission)
            else:
                runtime.budgets.settle_llm_call(
                    admission,
                    usage=tokens,
                    cost_usd=self.cost_usd,
                    response_id=self._response_id or None,  # "" is no id: count every call
                )
        self._close_span(exc, end_ns)

    def _usage_attributes(
        self, tokens: TokenUsage, cost: float | None, outcome: str
    ) -> dict[str, AttributeValue]:
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_USAGE_INPUT_TOKENS: tokens.total_input,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: tokens.output_tokens,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: tokens.cache_read_tokens,
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: tokens.cache_write_tokens,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: tokens.reasoning_tokens,
            sc.KIT_LLM_OUTCOME: outcome,
        }
        if cost is not None:
            attributes[sc.KIT_USAGE_COST_USD] = cost
        if self._finish_reason is not None:
            attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] = (self._finish_reason,)
        if self._response_id is not None:
            attributes[sc.GEN_AI_RESPONSE_ID] = self._response_id
        return attributes


class ToolCall(SpanScope):
    """One tool execution: an ``execute_tool {name}`` span."""

    def __init__(self, turn: Turn, name: str, call_id: str | None, arguments: Any) -> None:
        self._init_scope(turn._runtime)
        self.turn = turn
        errors = self._runtime.errors
        self.name = check_required_text(errors, "tool_call.name", name)
        self.call_id = check_text(errors, "tool_call.call_id", call_id)
        self.arguments = arguments
        self.result: Any = None
        self.is_error = False
        self._admission: Admission | None = None

    def start(self) -> None:
        """Start the tool's span (``with`` does this); run budgets may refuse it.

        Raises:
            BudgetExceeded: a run budget on tool calls refused it.
        """
        runtime = self._runtime
        turn = self.turn
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: self.name,
            sc.GEN_AI_CONVERSATION_ID: turn.run.session.session_id,
        }
        if self.call_id is not None:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = self.call_id
        if runtime.capture_content and self.arguments is not None:
            attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = runtime.clip(to_text(self.arguments))
        span = self._open_span(
            f"execute_tool {self.name}",
            turn.context,
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
        if runtime.budgets is None:
            return
        try:
            self._admission = runtime.budgets.admit_tool_call(call_scope(turn.run, "", ""))
        except BudgetExceeded as exc:
            span.set_attribute(sc.KIT_BUDGET_DENIED, exc.budget)
            self._ended = True
            self._close_span(exc)
            turn.run.stop_reason = "budget_exceeded"
            raise

    def set_result(self, result: Any, *, is_error: bool = False) -> None:
        """The tool's result; ``is_error`` marks a failed call (it still counts)."""
        if self._ended:
            self._runtime.errors.bad_input(
                "set_result", f"set_result on tool {self.name!r} after it ended; ignored"
            )
            return
        self.result = result
        self.is_error = check_flag(self._runtime.errors, "set_result.is_error", is_error)
        if self._payload is not None:
            self._payload.result = result

    def end(self, exc: BaseException | None = None) -> None:
        """End the tool call (``with`` does this)."""
        end_ns = time.time_ns()
        if self._second_end():
            return
        span = self._span
        if span is None:
            return
        runtime = self._runtime
        if self.is_error or exc is not None:
            span.set_attribute(sc.KIT_TOOL_IS_ERROR, True)
            if self._payload is not None:
                self._payload.is_error = True
            if exc is None:
                span.set_attribute(sc.ERROR_TYPE, "tool_error")
                span.set_status(Status(StatusCode.ERROR, "tool reported an error"))
        if runtime.capture_content and self.result is not None:
            span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, runtime.clip(to_text(self.result)))
        if runtime.budgets is not None and self._admission is not None:
            runtime.budgets.settle_tool_call(self._admission)
        self._close_span(exc, end_ns)


def call_scope(run: Run, provider: str, model: str) -> CallScope:
    """Who is making a call of ``run``: what budgets match on and count separately."""
    session = run.session
    return CallScope(
        session_id=session.session_id,
        run_id=run.run_id,
        user=session.user,
        provider=provider,
        model=model,
        agent=run.agent_name,
        attributes=session.attributes,
    )
