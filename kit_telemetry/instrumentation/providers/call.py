"""``ProviderCall``: one instrumented SDK call, from budget admission to recorded usage.

The SDK call becomes kit-telemetry's own LLM call, opened through the same handles as
``turn.llm_call``: in the current turn, else in the current run (an implicit turn), else
in an implicit run of its own. So it is admitted, priced, metered and counted exactly like
a call made with the API, and the spans of other instrumentations made inside the SDK
call nest under its ``chat {model}`` span.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api

from ... import semconv as sc
from ...errors import UsageError
from ...tracing import LLM, PAYLOADS
from ...usage import UsageKwargs
from ..context import current_run, current_session, current_turn
from .estimate import tokens_of_chars

if TYPE_CHECKING:
    from ..._errors import ErrorPolicy
    from ..calls import LLMCall
    from ..run import Run, Turn
    from ..session import Session

IMPLICIT_AGENT_NAME = "implicit"
"""The agent name of the run opened for a call made outside any run."""

# Set while an instrumented call runs: an SDK method that calls another instrumented one
# (a helper built on ``create``) is one call, not two.
_inside_call: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "kit_telemetry_inside_provider_call", default=False
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFacts:
    """What admission needs to know about a request, read before it is sent.

    Attributes:
        model: the requested model.
        max_tokens: the most output tokens it may produce (None: not given).
        estimated_input_tokens: the input estimated from its text.
        stream: the SDK returns a stream instead of a response.
        stream_usage: a stream of this request reports its usage (an OpenAI chat stream
            only when asked to with ``stream_options``).
    """

    model: str
    max_tokens: int | None
    estimated_input_tokens: int
    stream: bool
    stream_usage: bool = True


class StreamReader(Protocol):
    """Watches the items of one provider stream for its usage."""

    def observe(self, item: object) -> None:
        """See one item (chunk or event) of the stream."""

    def usage(self) -> object | None:
        """What the stream said about usage, for the provider's ``from_*`` (None: nothing)."""

    @property
    def output_chars(self) -> int:
        """Characters of text the stream produced so far."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderHooks:
    """How to read one provider's requests, responses and streams.

    Attributes:
        provider: the GenAI provider name, e.g. ``openai``.
        read_request: the request's facts from the SDK method's keyword arguments.
        read_usage: the ``kt.usage.from_*`` helper of the provider.
        new_stream_reader: a fresh reader for one stream.
    """

    provider: str
    read_request: Callable[[Mapping[str, Any]], RequestFacts]
    read_usage: Callable[[object], UsageKwargs]
    new_stream_reader: Callable[[], StreamReader]


class CallHost(Protocol):
    """What an instrumented call needs from the instrumentor that patched the SDK."""

    @property
    def errors(self) -> ErrorPolicy:
        """Where internal failures and bad provider answers are reported."""

    def implicit_session(self) -> Session:
        """The session of implicit runs opened outside any session."""


def inside_call() -> bool:
    """A kit LLM call is running in this context already: an instrumented one, or the
    agent's own ``with turn.llm_call(...)`` block (which records the usage itself)."""
    if _inside_call.get():
        return True
    payload = PAYLOADS.get(trace_api.get_current_span().get_span_context().span_id)
    return payload is not None and payload.role == LLM


class ProviderCall:
    """One SDK call as a kit LLM call: ``open`` admits it, one of the ``finish_*`` ends it.

    Args:
        call: the kit LLM call, started (admitted).
        implicit_run: the run opened for this call alone, ended with it (None: the
            call joined the agent's run).
        hooks: the provider's readers.
        facts: the request's facts.
        errors: the error policy of the call's telemetry.
    """

    def __init__(
        self,
        call: LLMCall,
        implicit_run: Run | None,
        hooks: ProviderHooks,
        facts: RequestFacts,
        errors: ErrorPolicy,
    ) -> None:
        self.call = call
        self.hooks = hooks
        self.facts = facts
        self._implicit_run = implicit_run
        self._errors = errors

    @classmethod
    def open(cls, hooks: ProviderHooks, facts: RequestFacts, host: CallHost) -> ProviderCall:
        """Open and admit the call, in the current turn or run or an implicit run.

        ``call.start()`` admits the call against every budget, then asks the extensions'
        ``llm_request`` handlers; either may refuse it before the request is sent.

        Raises:
            BudgetExceeded: a budget refused the call: the request must not be sent.
            Blocked: the run was stopped, or an extension blocked the call.
        """
        implicit_run: Run | None = None
        owner: Turn | Run | None = current_turn() or current_run()
        if owner is None:
            session = current_session() or host.implicit_session()
            owner = implicit_run = session.run(agent_name=IMPLICIT_AGENT_NAME)
            implicit_run.start()
        try:
            call = owner.llm_call(
                hooks.provider,
                facts.model,
                max_tokens=facts.max_tokens,
                estimated_input_tokens=facts.estimated_input_tokens,
            )
            call.start()
        except BaseException as exc:  # BudgetExceeded, mostly: the run it opened ends too
            if implicit_run is not None:
                implicit_run.end(exc)
            raise
        return cls(call, implicit_run, hooks, facts, host.errors)

    @contextmanager
    def sending(self) -> Iterator[None]:
        """The request is being sent: the call's span is current for other instrumentations."""
        token = context_api.attach(self.call.context)
        inside = _inside_call.set(True)
        try:
            yield
        finally:
            _inside_call.reset(inside)
            context_api.detach(token)

    def finish_response(self, response: object) -> None:
        """The SDK returned a whole response: record its usage and end the call.

        A response without a readable usage is counted as an unpriced call and reported
        (raised, after the call ended, only when strict).
        """
        problem: Exception | None
        try:
            problem = self._record(response, estimated_output_tokens=None)
        except Exception as exc:  # a failure of ours: the call still ends
            problem = exc
        self._end(None)
        if problem is not None:
            self._errors.failed("instrument", problem)

    def finish_stream(
        self, reader: StreamReader, exc: BaseException | None = None, *, complete: bool
    ) -> None:
        """The stream ended (``complete``: read to its end; else closed or failed).

        A stream that said nothing about usage (an OpenAI chat stream without
        ``stream_options={"include_usage": True}``, one closed early) is counted as an
        unpriced call, with kit's estimate on its span flagged ``kit.usage.estimated``;
        it is reported too when it was read to its end and should have said it.
        """
        problem: Exception | None = None
        try:
            output_tokens = tokens_of_chars(reader.output_chars)
            usage = reader.usage()
            if usage is None:
                self._mark_estimated(output_tokens)
                if complete and self.facts.stream_usage:
                    problem = UsageError(
                        f"{self.hooks.provider} stream for {self.facts.model} ended without usage"
                    )
            else:
                problem = self._record(usage, estimated_output_tokens=output_tokens)
        except Exception as error:  # a failure of ours: the call still ends
            problem = error
        self._end(exc)
        if problem is not None and exc is None:
            self._errors.failed("instrument", problem)

    def report_failure(self, exc: BaseException) -> None:
        """Something of ours failed while the call went on: reported, never raised (unless strict)."""
        self._errors.failed("instrument", exc)

    def fail(self, exc: BaseException) -> None:
        """The request failed before any response: end the call with the error."""
        self._end(exc)

    def _record(self, source: object, *, estimated_output_tokens: int | None) -> UsageError | None:
        """Record the usage in ``source``; the problem to report when it has none."""
        try:
            usage = self.hooks.read_usage(source)
        except UsageError as exc:
            # Counted as an unpriced call (never as $0): no usage is recorded.
            self._mark_estimated(estimated_output_tokens)
            return UsageError(f"{self.hooks.provider} response for {self.facts.model}: {exc}")
        self.call.record_usage(**usage)
        return None

    def _mark_estimated(self, output_tokens: int | None) -> None:
        """No usage from the provider: the call stays unpriced; our estimate goes on its span."""
        span = trace_api.get_current_span(self.call.context)
        span.set_attribute(sc.KIT_USAGE_ESTIMATED, True)
        span.set_attribute(sc.KIT_USAGE_ESTIMATED_INPUT_TOKENS, self.facts.estimated_input_tokens)
        if output_tokens is not None:
            span.set_attribute(sc.KIT_USAGE_ESTIMATED_OUTPUT_TOKENS, output_tokens)

    def _end(self, exc: BaseException | None) -> None:
        try:
            self.call.end(exc)
        finally:
            if self._implicit_run is not None:
                self._implicit_run.end(exc)
