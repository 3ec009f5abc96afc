"""``EventDispatcher``: each event to the handlers registered for it, observed or decided.

Handlers run in extension load order, then registration order, each with its own
``ExtensionContext``. Most events are observed: every handler sees the event, and one that
raises does not keep the next from running. At a decision point
(``extensions.decide.DECISION_EVENTS``) the handlers' return values count: they are asked
in the same order, async ones awaited up to the handler time-out, and the ``Verdict`` goes
back to the handle that opened the span (through its ``SpanPayload``), or to the caller of
``decide``. A ``Stop`` is kept by run id until the run ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from ..decisions import Stop, Verdict
from ..events import CustomEvent, Event, EventType, LLMUsageEvent
from ..instrumentation import current_run
from ..tracing import PAYLOADS
from .api import ContextHost, ExtensionContext
from .decide import DECISION_EVENTS, Chain
from .handlers import HandlerRunner, HandlerTimeoutError
from .lifecycle import ModelWatch
from .registry import ExtensionRegistry, HandlerEntry

# Events delivered at a span's start: their verdict goes to the payload being staged.
_START_EVENTS = frozenset((EventType.TOOL_CALL, EventType.USER_INPUT))
_AGENT_END = EventType.AGENT_END
_TOOL_RESULT = EventType.TOOL_RESULT
_LLM_USAGE = EventType.LLM_USAGE
_MODEL_CHANGE = EventType.MODEL_CHANGE
_SESSION_END = EventType.SESSION_END
MAX_CUSTOM_DEPTH = 8  # custom events sent from handlers of custom events, nested


class EventDispatcher:
    """Delivers events to the registered handlers; keeps the ``Stop`` of each run still going.

    Args:
        host: serves the handlers' contexts (state, notices, usage, custom events).
        registry: the handlers, by event type and custom event name.
        runner: calls the async handlers and reports the ones that fail.
        cwd: the working directory the contexts name.
    """

    def __init__(
        self, host: ContextHost, registry: ExtensionRegistry, runner: HandlerRunner, cwd: str
    ) -> None:
        self._host = host
        self._registry = registry
        self._runner = runner
        self._cwd = cwd
        self._lock = threading.Lock()
        self._stops: dict[str, Verdict] = {}  # run id -> the Stop of a run still going
        self._custom_depth = threading.local()
        self._models = ModelWatch()

    def dispatch(self, events: Sequence[Event], span: ReadableSpan | None) -> None:
        """Deliver the events of a span (or none): observed, or decided for the span."""
        handlers_by_type = self._registry.handlers
        for event in events:
            kind = event.type
            if self._stops and kind is _AGENT_END and event.run_id is not None:
                with self._lock:
                    self._stops.pop(event.run_id, None)
            if _MODEL_CHANGE in handlers_by_type:
                if kind is _LLM_USAGE:
                    assert isinstance(event, LLMUsageEvent)
                    change = self._models.seen(event)
                    if change is not None:
                        self.dispatch((change,), span)
                elif kind is _SESSION_END:
                    self._models.forget(event.session_id)
            handlers = handlers_by_type.get(kind)
            if not handlers:
                continue
            if kind in DECISION_EVENTS:
                self._decide_for_span(event, span)
                continue
            self._observe(event, handlers, span)

    def emit_custom(
        self, extension: str, session_id: str, name: str, payload: Any, span: ReadableSpan | None
    ) -> None:
        """Deliver ``ctx.emit(name, payload)`` of ``extension`` to the other extensions.

        Handlers of ``name`` (``on_custom``) run first, then those of every custom event
        (``on("custom")``). A custom event sent from a handler of one is delivered up to
        ``MAX_CUSTOM_DEPTH`` deep; deeper ones are dropped and counted (a loop).
        """
        depth = getattr(self._custom_depth, "value", 0)
        if depth >= MAX_CUSTOM_DEPTH:
            self._runner.failed(
                extension,
                EventType.CUSTOM,
                RecursionError(f"custom event {name!r} nested over {MAX_CUSTOM_DEPTH} deep"),
            )
            return
        event = CustomEvent(
            session_id=session_id,
            timestamp_ns=time.time_ns(),
            name=name,
            payload=payload,
            source=extension,
        )
        registry = self._registry
        handlers = registry.custom.get(name, ()) + registry.handlers.get(EventType.CUSTOM, ())
        self._custom_depth.value = depth + 1
        try:
            self._observe(event, handlers, span)
        finally:
            self._custom_depth.value = depth

    def _observe(
        self, event: Event, handlers: Sequence[HandlerEntry], span: ReadableSpan | None
    ) -> None:
        host = self._host
        runner = self._runner
        cwd = self._cwd
        agent = current_run()
        context = ExtensionContext.attached
        for extension, handler, is_async in handlers:
            ctx = context(host, extension, event.session_id, cwd, span, agent)
            if is_async:
                runner.submit(extension, handler, event, ctx)
                continue
            try:
                handler(event, ctx)
            except Exception as exc:
                runner.failed(extension, event.type, exc)

    def decide(self, event: Event, span: ReadableSpan | None = None) -> Verdict | None:
        """Deliver ``event`` as a decision point and return the extensions' verdict.

        The handlers of ``event.type`` are asked in load order (async ones awaited up to
        the handler time-out); the first ``Block``/``Stop``/``Handled`` ends the chain,
        ``Replace``/``Transform`` apply in turn. A ``Stop`` is also kept for the run
        (``stopped``). None: no handler had an opinion.
        """
        handlers = self._registry.handlers.get(event.type)
        if not handlers:
            return None
        # The chain is built for the first opinion: most handlers have none.
        chain: Chain | None = None
        current = event
        host = self._host
        runner = self._runner
        cwd = self._cwd
        agent = current_run()
        context = ExtensionContext.attached
        fail_closed = self._registry.fail_closed
        for index, (extension, handler, is_async) in enumerate(handlers):
            ctx = context(host, extension, event.session_id, cwd, span, agent)
            failure: BaseException | None = None
            try:
                if is_async:
                    result = runner.await_decision(extension, handler, current, ctx)
                else:
                    result = handler(current, ctx)
            except HandlerTimeoutError as exc:  # reported where it was seen
                failure = exc
            except Exception as exc:
                failure = exc
                runner.failed(extension, event.type, exc)
            if failure is not None:
                if extension not in fail_closed:
                    continue
                chain = chain or Chain(event)
                chain.fail(extension, failure)
            elif result is None:
                continue
            else:
                chain = chain or Chain(event)
                chain.take(extension, result)
            current = chain.event
            if chain.final:  # decided: the others still observe the event
                self._observe(current, handlers[index + 1 :], span)
                break
        if chain is None:
            return None
        verdict = chain.verdict
        if verdict is not None and isinstance(verdict.decision, Stop) and event.run_id:
            with self._lock:
                self._stops.setdefault(event.run_id, verdict)
        return verdict

    def _decide_for_span(self, event: Event, span: ReadableSpan | None) -> None:
        """A decision event built from a span: the verdict goes to that span's payload."""
        if event.type in _START_EVENTS:
            payload = PAYLOADS.staged()
        elif span is not None:
            payload = PAYLOADS.get(span.context.span_id)
            if event.type is _TOOL_RESULT and payload is not None and payload.asked:
                return  # asked at set_result already; the end only counts it
        else:
            payload = None
        verdict = self.decide(event, span)
        if payload is not None:
            payload.verdict = verdict

    def any_stopped(self) -> bool:
        """Some run still going was stopped by an extension."""
        return bool(self._stops)

    def stopped(self, run_id: str) -> Verdict | None:
        """The ``Stop`` an extension gave the run ``run_id``, if it was stopped."""
        if not self._stops:
            return None
        with self._lock:
            return self._stops.get(run_id)
