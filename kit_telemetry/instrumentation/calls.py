"""``LLMCall`` (one request to a model) and ``ToolCall`` (one tool execution)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from .. import messages
from .. import semconv as sc
from .._runtime import blocked
from ..decisions import Block, Replace
from ..errors import Blocked, BudgetExceeded
from ..events import EventType, RetryEvent, ToolResultEvent
from ..tokens import TOKEN_KINDS, TokenUsage
from ..tracing import LLM, TOOL, LLMUsage, SpanPayload
from ..validation.checks import (
    check_amount,
    check_count,
    check_error,
    check_flag,
    check_port,
    check_required_text,
    check_text,
    to_text,
)
from .context import _current_tool
from .scope import SpanScope, is_cancellation, readable_span

if TYPE_CHECKING:
    from .._errors import ErrorPolicy
    from ..budgets.calls import Admission, CallScope
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
        request: Any = None,
        *,
        server_address: str | None = None,
        server_port: int | None = None,
    ) -> None:
        self._init_scope(turn._runtime)
        self._request = request  # only for loop guards; never recorded
        self.turn = turn
        errors = self._runtime.errors
        self.provider = check_required_text(errors, "llm_call.provider", provider)
        self.model = check_required_text(errors, "llm_call.model", model)
        self.max_tokens = check_count(errors, "llm_call.max_tokens", max_tokens)
        self.estimated_input_tokens = check_count(
            errors, "llm_call.estimated_input_tokens", estimated_input_tokens
        )
        self.server_address = check_text(errors, "llm_call.server_address", server_address)
        self.server_port = check_port(errors, "llm_call.server_port", server_port)
        self.tokens: TokenUsage | None = None
        self.cost_usd: float | None = None
        self._given_cost: float | None = None
        self._finish_reason: str | None = None
        self._response_id: str | None = None
        self._response_model: str | None = None
        self._admission: Admission | None = None
        self._extra_costs: dict[str, float] = {}

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

        ``max_tokens`` and ``estimated_input_tokens`` must be non-negative ints or None.
        Anything else (NaN, inf, a negative or fractional number) is a ``UsageError`` when
        strict; otherwise it is reported and treated as not given: the budgets'
        ``default_max_tokens`` is reserved for an unknown ``max_tokens``, and the run's
        largest input so far (``default_input_estimate`` before it has one) for an
        unknown estimate. The call is still checked against every budget (an exhausted one
        refuses it) and its actual usage is charged in full.

        Then the extensions are asked (``Runtime.llm_request``): a stopped run or a ``Block``
        from an ``llm_request`` handler refuses the call; its reservation is released and
        no span is started.

        Raises:
            BudgetExceeded: a budget refused the call; the model must not be called.
            Blocked: the run was stopped, or an extension blocked the call.
            UsageError: strict, and ``max_tokens`` or ``estimated_input_tokens`` is no count.
        """
        run = self.turn.run
        denied: BudgetExceeded | None = None
        budgets = self._runtime.budgets
        if budgets is not None:
            from ..budgets.calls import LLMRequest  # loaded by the budget gate already

            request = LLMRequest(
                scope=call_scope(run, self.provider, self.model),
                max_tokens=self.max_tokens,
                estimated_input_tokens=self.estimated_input_tokens,
                largest_input_tokens=run.largest_input_tokens,
                content=self._request,
                subscription=run.session.subscription,
            )
            try:
                self._admission = budgets.admit_llm_call(request)
            except BudgetExceeded as exc:
                denied = exc
        if denied is None:
            step = run.next_llm_step()
        if denied is None and self._runtime.deciding():
            refused = self._runtime.llm_request(
                session_id=run.session.session_id,
                run_id=run.run_id,
                provider=self.provider,
                model=self.model,
                max_tokens=self.max_tokens,
                estimated_input_tokens=self.estimated_input_tokens,
                step=step,
                span=readable_span(self.turn),
            )
            if refused is not None:
                if budgets is not None and self._admission is not None:
                    budgets.release(self._admission)
                    self._admission = None
                self._ended = True
                raise refused
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            **provider_attributes(self.provider, legacy=self._runtime.legacy_names),
            sc.GEN_AI_REQUEST_MODEL: self.model,
            sc.GEN_AI_CONVERSATION_ID: run.session.session_id,
        }
        run.note_provider(self.provider)
        if self.server_address is not None:
            attributes[sc.SERVER_ADDRESS] = self.server_address
            if self.server_port is not None:
                attributes[sc.SERVER_PORT] = self.server_port
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

    def record_retry(self, attempt: int, error: BaseException | str | None = None) -> None:
        """The call is being retried: ``attempt`` (1 for the first retry) after ``error``.

        Adds a ``kit.retry`` event to the call's span and delivers a ``retry`` event. A bad
        ``attempt`` (not a count) is reported and the retry is not recorded; a bad ``error``
        (neither an exception nor a string) is reported and recorded as its ``str()``.
        """
        runtime = self._runtime
        checked = check_count(runtime.errors, "record_retry.attempt", attempt)
        if checked is None:
            return
        attempt = checked
        error = check_error(runtime.errors, "record_retry.error", error)
        span = self._span
        if span is not None:
            attributes: dict[str, AttributeValue] = {sc.KIT_RETRY_ATTEMPT: attempt}
            if error is not None:
                attributes[sc.KIT_RETRY_ERROR] = runtime.clip(error)
            span.add_event(sc.EVENT_RETRY, attributes)
        if not runtime.wants(EventType.RETRY):
            return
        run = self.turn.run
        runtime.emit(
            RetryEvent(
                session_id=run.session.session_id,
                timestamp_ns=time.time_ns(),
                run_id=run.run_id,
                provider=self.provider,
                model=self.model,
                attempt=attempt,
                error=error,
            ),
            readable_span(self),
        )

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
        response_model: str | None = None,
    ) -> None:
        """The call's usage. Token kinds are disjoint (``input_tokens`` excludes cached tokens).

        A second call replaces the first. ``cost_usd`` given here wins over the price table.
        ``response_model`` is the model that answered (``gen_ai.response.model``), when the
        provider says (e.g. a dated snapshot of the requested alias).
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
        response_model = check_text(errors, "record_usage.response_model", response_model)
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
        self._response_model = response_model

    def set_messages(
        self,
        input_messages: Any = None,
        output_messages: Any = None,
        *,
        system_instructions: str | None = None,
    ) -> None:
        """The call's content, recorded only with ``capture_content`` (and through its hook).

        Args:
            input_messages: the prompt: a string or chat messages (``role`` with
                ``content`` or ``parts``) -> ``gen_ai.input.messages``.
            output_messages: the answer: a string or chat messages ->
                ``gen_ai.output.messages`` (``finish_reason`` from ``record_usage``).
            system_instructions: the system prompt -> ``gen_ai.system_instructions``.
        """
        runtime = self._runtime
        instructions_text = check_text(
            runtime.errors, "set_messages.system_instructions", system_instructions
        )
        span = self._span
        if not runtime.capture_content or span is None or self._ended:
            return
        attributes: dict[str, AttributeValue] = {}
        if input_messages is not None:
            given = messages.input_messages(
                input_messages, runtime.redactor(sc.GEN_AI_INPUT_MESSAGES)
            )
            if given is not None:
                attributes[sc.GEN_AI_INPUT_MESSAGES] = given
        if output_messages is not None:
            answer = messages.output_messages(
                output_messages,
                self._finish_reason or "stop",
                runtime.redactor(sc.GEN_AI_OUTPUT_MESSAGES),
            )
            if answer is not None:
                attributes[sc.GEN_AI_OUTPUT_MESSAGES] = answer
        if instructions_text:
            instructions = messages.system_instructions(
                instructions_text, runtime.redactor(sc.GEN_AI_SYSTEM_INSTRUCTIONS)
            )
            if instructions is not None:
                attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = instructions
        span.set_attributes(attributes)

    def add_cost(self, usd: float, *, kind: str = "other") -> None:
        """A charge of this call that is not tokens: a web search, a tool fee, a surcharge.

        It is added to the call's cost (on top of its tokens, or of ``record_usage``'s
        ``cost_usd``), so it counts in totals, events, metrics and budgets. A bad amount
        or kind is reported (raised when strict) and ignored.

        Args:
            usd: the charge in USD, a finite number >= 0.
            kind: what it is for, e.g. ``web_search``; listed on the span.
        """
        charge = _charge(self._runtime.errors, self._ended, f"call to {self.model!r}", usd, kind)
        if charge is not None:
            self._extra_costs[charge[1]] = self._extra_costs.get(charge[1], 0.0) + charge[0]

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
        extra = self._extra_costs
        if tokens is None and extra:
            tokens = self.tokens = TokenUsage()  # charged, though no tokens were reported
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
            if extra:
                cost = None if cost is None else cost + sum(extra.values())
                span.set_attribute(sc.KIT_USAGE_EXTRA_COST_USD, sum(extra.values()))
                span.set_attribute(sc.KIT_USAGE_EXTRA_COST_KINDS, tuple(sorted(extra)))
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
                runtime.budgets.abandon(admission)  # the budgets' on_cancel rule
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
        if self._response_model is not None:
            attributes[sc.GEN_AI_RESPONSE_MODEL] = self._response_model
        if self._runtime.legacy_names:
            attributes[sc.GEN_AI_USAGE_PROMPT_TOKENS] = tokens.total_input
            attributes[sc.GEN_AI_USAGE_COMPLETION_TOKENS] = tokens.output_tokens
        return attributes


class ToolCall(SpanScope):
    """One tool execution: an ``execute_tool {name}`` span.

    A run started inside its block is a sub-agent run of this call's run.
    """

    _var = _current_tool

    def __init__(
        self,
        turn: Turn,
        name: str,
        call_id: str | None,
        arguments: Any,
        *,
        tool_type: str | None = None,
    ) -> None:
        self._init_scope(turn._runtime)
        self.turn = turn
        errors = self._runtime.errors
        self.name = check_required_text(errors, "tool_call.name", name)
        self.call_id = check_text(errors, "tool_call.call_id", call_id)
        self.arguments = arguments
        self.tool_type = check_text(errors, "tool_call.tool_type", tool_type)
        self.result: Any = None
        self.is_error = False
        self.cost_usd: float | None = None
        self._cost_kinds: set[str] = set()
        self._admission: Admission | None = None

    def add_cost(self, usd: float, *, kind: str = "tool_fee") -> None:
        """What this tool call cost in money (a paid API, a search, a sandbox minute).

        Charges add up; the sum is the tool call's ``cost_usd``, counted in the run's
        and session's cost, the tool's event and the USD budgets. A bad amount or kind
        is reported (raised when strict) and ignored.

        Args:
            usd: the charge in USD, a finite number >= 0.
            kind: what it is for, e.g. ``web_search``; listed on the span.
        """
        charge = _charge(self._runtime.errors, self._ended, f"tool {self.name!r}", usd, kind)
        if charge is not None:
            self.cost_usd = (self.cost_usd or 0.0) + charge[0]
            self._cost_kinds.add(charge[1])

    def start(self) -> None:
        """Start the tool's span (``with`` does this); extensions and run budgets may refuse it.

        Raises:
            Blocked: the run was stopped (no span), or a ``tool_call`` handler blocked the
                call (its span ends as a failed call, ``kit.tool.outcome="blocked"``).
            BudgetExceeded: a run budget on tool calls refused it.
        """
        runtime = self._runtime
        turn = self.turn
        stop = runtime.run_stopped(turn.run.run_id)
        if stop is not None:
            self._ended = True
            raise blocked("run", stop, self.name)
        attributes: dict[str, AttributeValue] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_EXECUTE_TOOL,
            sc.GEN_AI_TOOL_NAME: self.name,
            sc.GEN_AI_CONVERSATION_ID: turn.run.session.session_id,
        }
        if self.call_id is not None:
            attributes[sc.GEN_AI_TOOL_CALL_ID] = self.call_id
        if self.tool_type is not None:
            attributes[sc.GEN_AI_TOOL_TYPE] = self.tool_type
        if runtime.capture_content and self.arguments is not None:
            arguments = runtime.content(to_text(self.arguments), sc.GEN_AI_TOOL_CALL_ARGUMENTS)
            if arguments is not None:
                attributes[sc.GEN_AI_TOOL_CALL_ARGUMENTS] = arguments
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
        payload = self._payload
        verdict = payload.verdict if payload is not None else None
        if verdict is not None and isinstance(verdict.decision, Block):
            self._refuse(span, blocked("tool_call", verdict, self.name))
        if runtime.budgets is None:
            return
        try:
            self._admission = runtime.budgets.admit_tool_call(
                call_scope(turn.run, "", ""), tool=self.name, arguments=self.arguments
            )
        except BudgetExceeded as exc:
            span.set_attribute(sc.KIT_BUDGET_DENIED, exc.budget)
            self._ended = True
            self._close_span(exc)
            turn.run.stop_reason = "budget_exceeded"
            raise

    def _refuse(self, span: trace_api.Span, exc: Blocked) -> None:
        """End the span as a blocked, failed call and raise ``exc``."""
        span.set_attributes({sc.KIT_TOOL_OUTCOME: "blocked", sc.KIT_TOOL_IS_ERROR: True})
        if exc.extension:
            span.set_attribute(sc.KIT_BLOCKED_BY, exc.extension)
        if self._payload is not None:
            self._payload.is_error = True
        self.is_error = True
        self._ended = True
        self._close_span(exc)
        raise exc

    def set_result(self, result: Any, *, is_error: bool = False) -> None:
        """The tool's result; ``is_error`` marks a failed call (it still counts).

        The ``tool_result`` handlers are asked now: afterwards ``result`` and ``is_error``
        hold what the agent must pass on (an extension may have replaced them).
        """
        if self._ended:
            self._runtime.errors.bad_input(
                "set_result", f"set_result on tool {self.name!r} after it ended; ignored"
            )
            return
        self.result = result
        self.is_error = check_flag(self._runtime.errors, "set_result.is_error", is_error)
        payload = self._payload
        if payload is None:
            return
        payload.result = result
        runtime = self._runtime
        if self._span is None or not runtime.wants(EventType.TOOL_RESULT):
            return
        run = self.turn.run
        now_ns = time.time_ns()
        payload.asked = True
        verdict = runtime.decide(
            ToolResultEvent(
                session_id=run.session.session_id,
                timestamp_ns=now_ns,
                run_id=run.run_id,
                tool_name=self.name,
                call_id=self.call_id,
                result=result,
                is_error=self.is_error,
                duration_ms=(now_ns - self._start_ns) / 1e6,
            ),
            readable_span(self),
        )
        if verdict is not None and isinstance(verdict.change, Replace):
            self.result = payload.result = verdict.change.content
            self.is_error = bool(verdict.change.is_error)

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
            result = runtime.content(to_text(self.result), sc.GEN_AI_TOOL_CALL_RESULT)
            if result is not None:
                span.set_attribute(sc.GEN_AI_TOOL_CALL_RESULT, result)
        if runtime.budgets is not None and self._admission is not None:
            runtime.budgets.settle_tool_call(self._admission)
        cost = self.cost_usd
        if cost is not None:
            span.set_attribute(sc.KIT_USAGE_COST_USD, cost)
            span.set_attribute(sc.KIT_USAGE_EXTRA_COST_KINDS, tuple(sorted(self._cost_kinds)))
            if self._payload is not None:
                self._payload.usage = LLMUsage(TokenUsage(), cost, None, None)
            if runtime.budgets is not None:
                runtime.budgets.charge_tool_cost(call_scope(self.turn.run, "", ""), cost)
        self._close_span(exc, end_ns)


def _charge(
    errors: ErrorPolicy, ended: bool, what: str, usd: object, kind: object
) -> tuple[float, str] | None:
    """A checked ``add_cost`` charge as ``(usd, kind)``, or None when it is reported bad."""
    if ended:
        errors.bad_input("add_cost", f"add_cost on the {what} after it ended; ignored")
        return None
    amount = check_amount(errors, "add_cost.usd", usd)
    if amount is None:
        return None
    return amount, check_required_text(errors, "add_cost.kind", kind)


def call_scope(run: Run, provider: str, model: str) -> CallScope:
    """Who is making a call of ``run``: what budgets match on and count separately."""
    from ..budgets.calls import CallScope  # loaded by the budget gate already

    session = run.session
    return CallScope(
        session_id=session.session_id,
        # A sub-agent spends from its root run's run-scoped budgets.
        run_id=run.root_run_id,
        user=session.user,
        provider=provider,
        model=model,
        agent=run.agent_name,
        attributes=session.attributes,
    )


def provider_attributes(provider: str, *, legacy: bool) -> dict[str, AttributeValue]:
    """``gen_ai.provider.name``, and its older name ``gen_ai.system`` with ``legacy_names``."""
    if legacy:
        return {sc.GEN_AI_PROVIDER_NAME: provider, sc.GEN_AI_SYSTEM: provider}
    return {sc.GEN_AI_PROVIDER_NAME: provider}
