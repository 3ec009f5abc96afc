"""``Runtime``: what the instrumentation handles need from ``Telemetry``, and nothing more.

``Session``, ``Run``, ``Turn``, ``LLMCall`` and ``ToolCall`` hold one ``Runtime``: the
tracer their spans start on, the error policy, pricing, the budget gate, the session
state stores, the aggregator's totals for the spans they end and the extensions'
decision points. ``Telemetry`` builds it and the handles never see ``Telemetry`` itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from ._errors import ErrorPolicy
from .decisions import Block, Verdict
from .errors import Blocked
from .events import Event, EventType, LLMRequestEvent
from .messages import ContentHook, Redact
from .text import clean_content
from .tokens import TokenUsage
from .tools import ToolDefinition

if TYPE_CHECKING:
    from .aggregation import UsageAggregator
    from .budgets.gate import BudgetGate
    from .pricing import PriceTable
    from .state import SessionState
    from .state.registry import StateRegistry
    from .tracing import SpanPayload


class ExtensionRuntime(Protocol):
    """What the handles ask of the extensions (``ExtensionSpanProcessor`` has these)."""

    def has_handlers(self, event_type: EventType) -> bool: ...
    def decide(self, event: Event, span: ReadableSpan | None = None) -> Verdict | None: ...
    def stopped(self, run_id: str) -> Verdict | None: ...
    def any_stopped(self) -> bool: ...
    def emit(self, event: Event, span: ReadableSpan | None = None) -> None: ...
    def find_tool(self, name: str) -> tuple[str, ToolDefinition] | None: ...
    def tool_definitions(self) -> list[ToolDefinition]: ...
    # An ExtensionContext: not named here, extensions import the handles, which import us.
    def tool_context(self, extension: str, session_id: str, span: ReadableSpan | None) -> Any: ...
    def run_coroutine(self, extension: str, coro: Coroutine[Any, Any, Any]) -> Any: ...


class Runtime:
    """The narrow, typed interface between the handles and the rest of kit-telemetry.

    Attributes:
        tracer: where the handles start their spans.
        errors: what happens to bad input and internal failures.
        budgets: admits and settles calls; None when no budget is configured.
        extensions: the extensions' decision points; None when there are none.
        capture_content: prompts, tool arguments and results go on spans.
        legacy_names: also write the older attribute names (``gen_ai.system``,
            ``gen_ai.usage.prompt_tokens``/``completion_tokens``, ``kit.user_input.text``,
            ``kit.run.response``) for backends that still read them.
    """

    def __init__(
        self,
        *,
        tracer: Tracer,
        errors: ErrorPolicy,
        prices: PriceTable,
        aggregator: UsageAggregator,
        states: StateRegistry,
        budgets: BudgetGate | None = None,
        capture_content: bool | ContentHook = False,
        max_content_chars: int = 4096,
        legacy_names: bool | None = None,
        extensions: ExtensionRuntime | None = None,
    ) -> None:
        self.tracer = tracer
        self.extensions = extensions
        self.errors = errors
        self.budgets = budgets
        self.capture_content = bool(capture_content)
        self._content_hook = capture_content if callable(capture_content) else None
        self.legacy_names = env_legacy_names() if legacy_names is None else bool(legacy_names)
        self._max_content_chars = max_content_chars
        self._prices = prices
        self._aggregator = aggregator
        self._states = states

    def clip(self, text: str) -> str:
        """``text`` valid UTF-8 and cut to ``max_content_chars``, saying how much was cut."""
        return clean_content(text, max_chars=self._max_content_chars)

    def content(self, text: str, where: str) -> str | None:
        """``text`` as it may go to attribute ``where``: through the ``capture_content``
        hook, then clipped; None when content is not captured or the hook dropped it.

        A hook that raises drops the content (it may hold what the hook was to remove).
        """
        if not self.capture_content:
            return None
        hook = self._content_hook
        if hook is not None:
            try:
                kept = hook(text, where)
            except Exception as exc:
                self.errors.failed("capture_content", exc)
                return None
            if kept is None:
                return None
            if not isinstance(kept, str):
                self.errors.bad_input(
                    "capture_content",
                    f"capture_content hook must return a str or None, got {kept!r}; dropped",
                )
                return None
            text = kept
        return self.clip(text)

    def redactor(self, where: str) -> Redact:
        """``content`` for the text parts of the messages bound for attribute ``where``."""
        return lambda text: self.content(text, where)

    def price(
        self, provider: str, model: str, usage: TokenUsage, *, subscription: bool
    ) -> float | None:
        """The call's cost in USD; None when the model has no price (or pricing failed)."""
        try:
            return self._prices.cost_usd(provider, model, usage, subscription=subscription)
        except Exception as exc:
            self.errors.failed("pricing", exc)
            return None

    # --- decisions -------------------------------------------------------------------------
    def llm_request(
        self,
        *,
        session_id: str,
        run_id: str | None,
        provider: str,
        model: str,
        max_tokens: int | None = None,
        estimated_input_tokens: int | None = None,
        step: int = 0,
        span: ReadableSpan | None = None,
    ) -> Blocked | None:
        """The decision point of an LLM call: call it after budget admission, before the model.

        A stopped run refuses the call (``kind="run"``); otherwise the ``llm_request``
        handlers are asked and a ``Block`` refuses it (``kind="llm_call"``). The caller
        releases its budget reservation and raises what this returns. ``span`` is the
        span the call will be made under (handlers see it as ``ctx.span``).

        Returns:
            the ``Blocked`` to raise, or None: the call goes ahead.
        """
        extensions = self.extensions
        if extensions is None:
            return None
        if run_id:
            stop = extensions.stopped(run_id)
            if stop is not None:
                return blocked("run", stop, model)
        if not extensions.has_handlers(EventType.LLM_REQUEST):
            return None
        verdict = extensions.decide(
            LLMRequestEvent(
                session_id=session_id,
                timestamp_ns=time.time_ns(),
                run_id=run_id,
                provider=provider,
                model=model,
                max_tokens=max_tokens,
                estimated_input_tokens=estimated_input_tokens,
                step=step,
            ),
            span,
        )
        if verdict is not None and isinstance(verdict.decision, Block):
            return blocked("llm_call", verdict, model)
        return None

    def run_stopped(self, run_id: str) -> Verdict | None:
        """The ``Stop`` an extension gave this run, if one did."""
        extensions = self.extensions
        return extensions.stopped(run_id) if extensions is not None and run_id else None

    def deciding(self) -> bool:
        """An ``llm_request`` handler is registered or some run is stopped: ask first."""
        extensions = self.extensions
        return extensions is not None and (
            extensions.has_handlers(EventType.LLM_REQUEST) or extensions.any_stopped()
        )

    def wants(self, event_type: EventType) -> bool:
        """Some extension handles ``event_type`` (so the event is worth building)."""
        extensions = self.extensions
        return extensions is not None and extensions.has_handlers(event_type)

    def decide(self, event: Event, span: ReadableSpan | None = None) -> Verdict | None:
        """Put ``event`` to the extensions as a decision point; their verdict, or None."""
        extensions = self.extensions
        return extensions.decide(event, span) if extensions is not None else None

    def emit(self, event: Event, span: ReadableSpan | None = None) -> None:
        """Deliver an event that no span carries (a retry) to the extensions."""
        extensions = self.extensions
        if extensions is not None:
            extensions.emit(event, span)

    # --- sessions ------------------------------------------------------------------------
    def session_started(
        self, session_id: str, session_file: str | None, *, subscription: bool
    ) -> None:
        """A session opened: its state lives beside ``session_file``."""
        self._states.session_started(session_id, session_file)
        if subscription:
            self._aggregator.mark_subscription(session_id)

    def session_ended(self, session_id: str) -> None:
        """A session closed: its state store is flushed and closed."""
        self._states.session_ended(session_id)

    def state(self, session_id: str, session_file: str | None) -> SessionState:
        """The session's key-value store (opened on first use)."""
        return self._states.state_for(session_id, session_file)

    # --- totals for the spans the handles end ----------------------------------------------
    def run_attributes(
        self, payload: SpanPayload, duration_ms: float, *, failed: bool
    ) -> dict[str, AttributeValue]:
        """The run's ``kit.run.*`` totals, to set on its span before it ends."""
        return self._aggregator.run_attributes(payload, duration_ms, failed=failed)

    def session_attributes(self, session_id: str, end_ns: int) -> dict[str, AttributeValue]:
        """The session's ``kit.session.*`` totals, to set on its end span."""
        return self._aggregator.session_attributes(session_id, end_ns)


LEGACY_NAMES_ENV = "KIT_TELEMETRY_LEGACY_NAMES"
"""Set to true (1, yes) to write the older attribute names too (``legacy_names``)."""


def env_legacy_names() -> bool:
    """Whether ``KIT_TELEMETRY_LEGACY_NAMES`` asks for the older attribute names."""
    return os.environ.get(LEGACY_NAMES_ENV, "").strip().lower() in ("1", "true", "yes")


def blocked(kind: str, verdict: Verdict, name: str) -> Blocked:
    """The ``Blocked`` to raise into the agent for ``verdict``."""
    reason = getattr(verdict.decision, "reason", "")
    return Blocked(kind, reason, extension=verdict.extension, name=name)
