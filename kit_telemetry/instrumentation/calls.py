"""``LLMCall`` (one request to a model) and ``ToolCall`` (one tool execution)."""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import semconv as sc
from ..errors import BudgetExceeded
from ..tracing import LLM, TOOL, LLMUsage, SpanPayload, set_clean_attributes
from .scope import _SpanScope, _to_text

if TYPE_CHECKING:
    from .run import Turn


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
            if type(value) is not int or value < 0:  # bool and float are refused too
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
        finish_reason = self._text_or_none("finish_reason", finish_reason)
        response_id = self._text_or_none("response_id", response_id)
        self.usage = dict(zip(_USAGE_FIELDS, values, strict=True))
        self._given_cost = float(cost_usd) if cost_usd is not None else None
        self._finish_reason = finish_reason
        self._response_id = response_id

    def _text_or_none(self, name: str, value: object) -> str | None:
        if value is None or isinstance(value, str):
            return value
        self._tel._bad_input(
            f"record_usage {name} must be a string or None, got {value!r}; recorded as its str()"
        )
        return str(value)

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
            set_clean_attributes(span, attributes)
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
