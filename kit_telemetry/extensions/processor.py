"""``ExtensionSpanProcessor``: the handler runtime, as an OpenTelemetry span processor.

It sits after the ``UsageAggregator`` on the same provider and is the aggregator's event
sink: for each span start and end, the aggregator hands it the events it built, and it
calls the handlers registered for them, in extension load order, then registration order.
Then the span goes to the extensions' own raw span processors. A handler that raises is
logged with its extension's name and counted; the next handler still runs and the agent
never sees it.

At a decision point (``extensions.decide.DECISION_EVENTS``) the handlers' return values
count: they are asked in the same order, async ones awaited up to ``handler_timeout_s``,
and the ``Verdict`` goes back to the handle that opened the span (through its
``SpanPayload``), or to the caller of ``decide``. A ``Stop`` is kept by run id until the
run ends: ``stopped(run_id)`` says whether its next call is refused.
"""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ..aggregation import OPTIONAL_EVENTS, UsageAggregator
from ..decisions import Stop, Verdict
from ..errors import ExtensionLoadError, UnknownCommandError
from ..events import CustomEvent, Event, EventType, LLMUsageEvent, UsageTotals
from ..instrumentation import current_run, current_session
from ..tools import ToolDefinition
from ..tracing import PAYLOADS
from .api import (
    CommandDefinition,
    ExtensionAPI,
    ExtensionContext,
    Handler,
    LoadedExtension,
)
from .decide import DECISION_EVENTS, Chain
from .lifecycle import ModelWatch
from .loader import extension_name, import_extension, reimport

if TYPE_CHECKING:
    from ..instrumentation import Session
    from ..state import SessionState
    from .async_runner import AsyncRunner

logger = logging.getLogger("kit_telemetry")

Notifier = Callable[[str, str, str], None]  # (extension, message, type)


class HandlerErrorMetrics(Protocol):
    """What the runtime reports (``metrics.KitMetrics`` has these)."""

    def record_handler_error(self, extension: str, event: str) -> None: ...


def _log_notifier(extension: str, message: str, type: str) -> None:
    level = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[type]
    logger.log(level, "[%s] %s", extension, message)


class HandlerTimeoutError(TimeoutError):
    """An async handler asked for a decision did not answer within ``handler_timeout_s``."""


# Events delivered at a span's start: their verdict goes to the payload being staged.
_START_EVENTS = frozenset((EventType.TOOL_CALL, EventType.USER_INPUT))
_AGENT_END = EventType.AGENT_END
_TOOL_RESULT = EventType.TOOL_RESULT
_LLM_USAGE = EventType.LLM_USAGE
_MODEL_CHANGE = EventType.MODEL_CHANGE
_SESSION_END = EventType.SESSION_END
MAX_CUSTOM_DEPTH = 8  # custom events sent from handlers of custom events, nested


class _Registered:
    __slots__ = (
        "commands",
        "custom",
        "fail_closed",
        "handlers",
        "name",
        "path",
        "processors",
        "spec",
        "tools",
    )

    def __init__(self, name: str, spec: str, path: str, *, fail_closed: bool = False) -> None:
        self.name = name
        self.spec = spec
        self.path = path
        self.fail_closed = fail_closed
        self.handlers: list[tuple[EventType, Handler]] = []
        self.custom: list[tuple[str, Handler]] = []
        self.tools: list[ToolDefinition] = []
        self.commands: list[CommandDefinition] = []
        self.processors: list[SpanProcessor] = []

    def snapshot(self) -> LoadedExtension:
        return LoadedExtension(
            name=self.name,
            path=self.path,
            handlers=tuple(self.handlers),
            commands=tuple(self.commands),
            span_processors=tuple(self.processors),
            tools=tuple(self.tools),
        )


class ExtensionSpanProcessor(SpanProcessor):
    """Runs extension handlers for the events of the spans it sees.

    Add it after a ``UsageAggregator`` to any ``TracerProvider``; ``Telemetry`` does so.

    Args:
        aggregator: the aggregator on the same provider, which builds the events.
        state_provider: returns a session's state store; by default one store per session,
            kept in memory or under ``state_dir``.
        state_dir: for the default state provider: where sidecars of sessions live.
        handler_timeout_s: an ``async def`` handler running longer is abandoned.
        notifier: receives ``notify`` calls as (extension, message, type); default: the logger.
        metrics: counts handler errors (``kit_extension_handler_errors_total``).
        on_error: reports other internal failures (component, exception).
        strict: re-raise handler errors (for tests).
    """

    def __init__(
        self,
        aggregator: UsageAggregator,
        *,
        state_provider: Callable[[str], SessionState] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        handler_timeout_s: float = 5.0,
        notifier: Notifier | None = None,
        metrics: HandlerErrorMetrics | None = None,
        on_error: Callable[[str, BaseException], None] | None = None,
        strict: bool = False,
    ) -> None:
        self._aggregator = aggregator
        self._state_provider = state_provider or self._default_state
        self._state_dir = state_dir
        self._own_states: dict[str, SessionState] = {}
        self.notifier: Notifier = notifier or _log_notifier
        self._metrics = metrics
        self._on_error = on_error
        self.strict = strict
        self._cwd = os.getcwd()
        self._lock = threading.Lock()
        self._extensions: dict[str, _Registered] = {}
        self._handlers: dict[EventType, tuple[tuple[str, Handler, bool], ...]] = {}
        self._processors: tuple[tuple[str, SpanProcessor], ...] = ()
        self._commands: dict[str, tuple[str, CommandDefinition]] = {}
        self._tools: dict[str, tuple[str, ToolDefinition]] = {}
        self._loading: _Registered | None = None
        self._handler_timeout_s = handler_timeout_s
        self._runners: dict[str, AsyncRunner] = {}  # per extension, for its async handlers
        self._fail_closed: frozenset[str] = frozenset()
        self._stops: dict[str, Verdict] = {}  # run id -> the Stop of a run still going
        self._custom: dict[str, tuple[tuple[str, Handler, bool], ...]] = {}
        self._custom_depth = threading.local()
        self._models = ModelWatch()
        aggregator.want_events(())
        aggregator.set_event_sink(self._dispatch)

    # --- loading ---------------------------------------------------------------------------
    def load(
        self, spec: str | os.PathLike[str], *, errors: str = "raise", fail_closed: bool = False
    ) -> LoadedExtension:
        """Import an extension and run its ``setup(api)`` (plain or async).

        Args:
            errors: "raise" raises ``ExtensionLoadError``; "log" logs it, counts it and
                returns an empty ``LoadedExtension`` so the other extensions still load.
            fail_closed: a handler of this extension that raises or times out at a decision
                point blocks (or stops) instead of having no opinion; so does a module
                attribute ``FAIL_CLOSED = True``.
        """
        text = os.fspath(spec)
        name = extension_name(text)
        try:
            if name in self._extensions:
                raise ExtensionLoadError(
                    f"extension {name!r} is already loaded (from {self._extensions[name].path})"
                )
            module, path = import_extension(text)
            fail_closed = fail_closed or getattr(module, "FAIL_CLOSED", False) is True
            return self._setup(name, text, path, module, fail_closed=fail_closed)
        except ExtensionLoadError as exc:
            if errors == "raise":
                raise
            logger.error("kit-telemetry: %s", exc, exc_info=exc)
            self._report("extension_load", exc)
            return LoadedExtension(name=name, path=text)

    def load_setup(
        self, name: str, setup: Callable[[ExtensionAPI], object], *, fail_closed: bool = False
    ) -> LoadedExtension:
        """Run ``setup(api)`` of an extension defined in code (no module to import).

        Raises:
            ExtensionLoadError: an extension of that name is loaded, or ``setup`` raised.
        """
        if name in self._extensions:
            raise ExtensionLoadError(
                f"extension {name!r} is already loaded (from {self._extensions[name].path})"
            )
        path = getattr(setup, "__module__", None) or name
        return self._setup(name, name, path, _SetupModule(setup), fail_closed=fail_closed)

    def reload(self, name: str) -> LoadedExtension:
        """Re-import a loaded extension and re-run its ``setup``; session state is untouched."""
        registered = self._extensions.get(name)
        if registered is None:
            raise ExtensionLoadError(
                f"no extension named {name!r} is loaded; loaded: {sorted(self._extensions)}"
            )
        module = reimport(registered.spec, registered.path)
        order = list(self._extensions)
        self._unregister(name)
        loaded = self._setup(
            name, registered.spec, registered.path, module, fail_closed=registered.fail_closed
        )
        with self._lock:  # back in its load position: handler order is load order
            self._extensions = {n: self._extensions[n] for n in order if n in self._extensions}
            self._rebuild()
        return loaded

    def loaded(self) -> list[LoadedExtension]:
        """Every loaded extension, in load order."""
        return [r.snapshot() for r in self._extensions.values()]

    def _setup(
        self, name: str, spec: str, path: str, module: Any, *, fail_closed: bool = False
    ) -> LoadedExtension:
        setup = getattr(module, "setup", None)
        if not callable(setup):
            raise ExtensionLoadError(f"extension {name!r} ({path}) has no setup(api) function")
        registered = _Registered(name, spec, path, fail_closed=fail_closed)
        with self._lock:
            self._extensions[name] = registered
        api = ExtensionAPI(self, name)
        try:
            result = setup(api)
            if inspect.isawaitable(result):
                self._async_runner(name).run(_awaitable(result), timeout_s=60)
        except BaseException as exc:
            self._unregister(name)
            raise ExtensionLoadError(
                f"extension {name!r}: setup() raised {type(exc).__name__}: {exc}"
            ) from exc
        return registered.snapshot()

    def _unregister(self, name: str) -> None:
        with self._lock:
            self._extensions.pop(name, None)
            self._commands = {k: v for k, v in self._commands.items() if v[0] != name}
            self._tools = {k: v for k, v in self._tools.items() if v[0] != name}
            self._rebuild()

    # --- the Host protocol (called by ExtensionAPI / ExtensionContext) ---------------------
    def add_handler(self, extension: str, event_type: EventType, handler: Handler) -> None:
        """Run ``handler`` for events of ``event_type``, after those registered before."""
        if _is_async(handler):
            self._async_runner(extension)  # at registration, not in the middle of a run
        with self._lock:
            self._extensions[extension].handlers.append((event_type, handler))
            self._rebuild()

    def add_custom_handler(self, extension: str, name: str, handler: Handler) -> None:
        """Run ``handler`` for the custom events called ``name``."""
        if _is_async(handler):
            self._async_runner(extension)
        with self._lock:
            self._extensions[extension].custom.append((name, handler))
            self._rebuild()

    def add_command(self, extension: str, command: CommandDefinition) -> None:
        """Offer ``command`` (``ValueError`` if another extension has its name)."""
        with self._lock:
            if command.name in self._commands:
                owner = self._commands[command.name][0]
                raise ValueError(
                    f"command {command.name!r} is already registered by extension {owner!r}"
                )
            self._extensions[extension].commands.append(command)
            self._commands[command.name] = (extension, command)

    def add_tool(self, extension: str, tool: ToolDefinition) -> None:
        """Offer ``tool`` (``ValueError`` if another extension has its name)."""
        with self._lock:
            if tool.name in self._tools:
                owner = self._tools[tool.name][0]
                raise ValueError(f"tool {tool.name!r} is already registered by extension {owner!r}")
            self._extensions[extension].tools.append(tool)
            self._tools[tool.name] = (extension, tool)

    def tool_definitions(self) -> list[ToolDefinition]:
        """Every registered tool, in extension load order."""
        return [t for ext in list(self._extensions.values()) for t in ext.tools]

    def find_tool(self, name: str) -> tuple[str, ToolDefinition] | None:
        """The extension that registered tool ``name``, and the tool; None if none did."""
        return self._tools.get(name)

    def tool_context(
        self, extension: str, session_id: str, span: ReadableSpan | None
    ) -> ExtensionContext:
        """The context a tool's handler runs with."""
        return ExtensionContext.attached(
            self, extension, session_id, self._cwd, span, current_run()
        )

    def run_coroutine(self, extension: str, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on ``extension``'s loop and wait for its result (an async tool)."""
        return self._async_runner(extension).run(coro)

    def add_span_processor(self, extension: str, processor: SpanProcessor) -> None:
        """Hand every span start and end to ``processor`` as well."""
        with self._lock:
            self._extensions[extension].processors.append(processor)
            self._rebuild()

    def _rebuild(self) -> None:
        # Immutable tuples, swapped whole: dispatch reads them without the lock.
        table: dict[EventType, list[tuple[str, Handler, bool]]] = {}
        custom: dict[str, list[tuple[str, Handler, bool]]] = {}
        processors: list[tuple[str, SpanProcessor]] = []
        for ext in self._extensions.values():
            for event_type, handler in ext.handlers:
                table.setdefault(event_type, []).append((ext.name, handler, _is_async(handler)))
            for name, handler in ext.custom:
                custom.setdefault(name, []).append((ext.name, handler, _is_async(handler)))
            processors.extend((ext.name, p) for p in ext.processors)
        self._handlers = {k: tuple(v) for k, v in table.items()}
        self._custom = {k: tuple(v) for k, v in custom.items()}
        self._processors = tuple(processors)
        self._fail_closed = frozenset(e.name for e in self._extensions.values() if e.fail_closed)
        self._aggregator.want_events([t for t in OPTIONAL_EVENTS if t in self._handlers])

    def notify(self, extension: str, message: str, type: str) -> None:
        """Pass an extension's notice to the notifier."""
        # message and type were checked by the API (extensions.api._check_notice).
        try:
            self.notifier(extension, message, type)
        except Exception as exc:
            self._report("notifier", exc)

    def session_state(self, session_id: str) -> SessionState:
        """The session's key-value store."""
        return self._state_provider(session_id)

    def session_usage(self, session_id: str) -> UsageTotals:
        """The session's totals so far."""
        return self._aggregator.session_usage(session_id)

    def _default_state(self, session_id: str) -> SessionState:
        from ..state import SessionState, sidecar_path

        with self._lock:
            state = self._own_states.get(session_id)
            if state is None:
                path = sidecar_path(
                    session_file=None, session_id=session_id, state_dir=self._state_dir
                )
                state = self._own_states[session_id] = SessionState(path)
            return state

    # --- commands ------------------------------------------------------------------------------
    def run_command(self, name: str, args: str = "", *, session: Session | None = None) -> Any:
        """Run a registered command with a context for ``session`` (or the current one).

        Raises:
            UnknownCommandError: no extension registered ``name``; the message lists the known ones.
        """
        entry = self._commands.get(name)
        if entry is None:
            known = ", ".join(sorted(self._commands)) or "none"
            raise UnknownCommandError(f"unknown command {name!r}; known commands: {known}")
        extension, command = entry
        session = session or current_session()
        ctx = ExtensionContext.attached(
            self, extension, session.session_id if session else "", self._cwd, None, current_run()
        )
        result = command.handler(ctx, args)
        if inspect.isawaitable(result):
            return self._async_runner(extension).run(_awaitable(result))
        return result

    # --- dispatch ----------------------------------------------------------------------------
    def emit(self, event: Event, span: ReadableSpan | None = None) -> None:
        """Deliver one event that did not come from a span (budget alerts, retries)."""
        self._dispatch((event,), span)

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
            self._handler_failed(
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
        handlers = self._custom.get(name, ()) + self._handlers.get(EventType.CUSTOM, ())
        self._custom_depth.value = depth + 1
        try:
            self._observe(event, handlers, span)
        finally:
            self._custom_depth.value = depth

    def _dispatch(self, events: Sequence[Event], span: ReadableSpan | None) -> None:
        handlers_by_type = self._handlers
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
                        self._dispatch((change,), span)
                elif kind is _SESSION_END:
                    self._models.forget(event.session_id)
            handlers = handlers_by_type.get(kind)
            if not handlers:
                continue
            if kind in DECISION_EVENTS:
                self._decide_for_span(event, span)
                continue
            self._observe(event, handlers, span)

    def _observe(
        self,
        event: Event,
        handlers: Sequence[tuple[str, Handler, bool]],
        span: ReadableSpan | None,
    ) -> None:
        cwd = self._cwd
        agent = current_run()
        context = ExtensionContext.attached
        for extension, handler, is_async in handlers:
            ctx = context(self, extension, event.session_id, cwd, span, agent)
            if is_async:
                self._submit_async(extension, handler, event, ctx)
                continue
            try:
                handler(event, ctx)
            except Exception as exc:
                self._handler_failed(extension, event.type, exc)

    # --- decisions ----------------------------------------------------------------------------
    def decide(self, event: Event, span: ReadableSpan | None = None) -> Verdict | None:
        """Deliver ``event`` as a decision point and return the extensions' verdict.

        The handlers of ``event.type`` are asked in load order (async ones awaited up to
        ``handler_timeout_s``); the first ``Block``/``Stop``/``Handled`` ends the chain,
        ``Replace``/``Transform`` apply in turn. A ``Stop`` is also kept for the run
        (``stopped``). None: no handler had an opinion.
        """
        handlers = self._handlers.get(event.type)
        if not handlers:
            return None
        # The chain is built for the first opinion: most handlers have none.
        chain: Chain | None = None
        current, final = event, False
        cwd = self._cwd
        agent = current_run()
        context = ExtensionContext.attached
        fail_closed = self._fail_closed
        for extension, handler, is_async in handlers:
            ctx = context(self, extension, event.session_id, cwd, span, agent)
            if final:  # decided: the others still observe the event
                if is_async:
                    self._submit_async(extension, handler, current, ctx)
                    continue
                try:
                    handler(current, ctx)
                except Exception as exc:
                    self._handler_failed(extension, event.type, exc)
                continue
            failure: BaseException | None = None
            try:
                if is_async:
                    result = self._await_decision(extension, handler, current, ctx)
                else:
                    result = handler(current, ctx)
            except HandlerTimeoutError as exc:  # reported where it was seen
                failure = exc
            except Exception as exc:
                failure = exc
                self._handler_failed(extension, event.type, exc)
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
            current, final = chain.event, chain.final
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

    def has_handlers(self, event_type: EventType) -> bool:
        """Some extension registered a handler for ``event_type``."""
        return event_type in self._handlers

    def any_stopped(self) -> bool:
        """Some run still going was stopped by an extension."""
        return bool(self._stops)

    def stopped(self, run_id: str) -> Verdict | None:
        """The ``Stop`` an extension gave the run ``run_id``, if it was stopped."""
        if not self._stops:
            return None
        with self._lock:
            return self._stops.get(run_id)

    def _await_decision(
        self, extension: str, handler: Handler, event: Event, ctx: ExtensionContext
    ) -> Any:
        label = f"{extension}:{event.type.value}"
        job = self._async_runner(extension).submit(
            event.session_id, label, lambda: handler(event, ctx)
        )
        try:
            return job.future.result(self._handler_timeout_s)
        except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
            job.future.cancel()
            if job.claim_report():  # else the runner abandoned it and reported it
                self._handler_timed_out(label)
            raise HandlerTimeoutError(
                f"{label}: no decision within {self._handler_timeout_s:g} s"
            ) from None

    # --- async handlers ------------------------------------------------------------------------
    def _async_runner(self, extension: str) -> AsyncRunner:
        # Imported and started for the first async handler: most agents register none, and
        # asyncio is a tenth of the package's import time.
        from .async_runner import AsyncRunner

        with self._lock:
            runner = self._runners.get(extension)
            if runner is None:
                runner = self._runners[extension] = AsyncRunner(
                    timeout_s=self._handler_timeout_s,
                    on_timeout=self._handler_timed_out,
                    name=extension,
                )
            return runner

    def _submit_async(
        self, extension: str, handler: Handler, event: Event, ctx: ExtensionContext
    ) -> None:
        label = f"{extension}:{event.type.value}"
        self._async_runner(extension).submit(
            event.session_id,
            label,
            lambda: handler(event, ctx),
            lambda exc: self._handler_failed(extension, event.type, exc, from_loop=True),
        )

    def _handler_failed(
        self, extension: str, event: EventType | str, exc: BaseException, *, from_loop: bool = False
    ) -> None:
        """A handler (or an extension's raw span processor: event "span_start"...) raised."""
        name = event.value if isinstance(event, EventType) else event
        logger.error(
            "kit-telemetry: extension %r handler for %s raised %s: %s",
            extension,
            name,
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
        if self._metrics is not None:
            self._metrics.record_handler_error(extension, name)
        if self.strict and not from_loop:
            raise exc

    def _handler_timed_out(self, label: str) -> None:
        extension, _, event = label.partition(":")
        logger.error(
            "kit-telemetry: extension %r async handler for %s timed out; abandoned",
            extension,
            event,
        )
        if self._metrics is not None:
            self._metrics.record_handler_error(extension, event)

    def _report(self, component: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(component, exc)

    # --- SpanProcessor -----------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for extension, processor in self._processors:
            try:
                processor.on_start(span, parent_context)
            except Exception as exc:
                self._handler_failed(extension, "span_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        for extension, processor in self._processors:
            try:
                processor.on_end(span)
            except Exception as exc:
                self._handler_failed(extension, "span_end", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for async handlers and the extensions' own processors."""
        deadline = time.monotonic() + timeout_millis / 1000
        ok = True
        for runner in list(self._runners.values()):  # one deadline for all of them
            ok = runner.flush(max(deadline - time.monotonic(), 0.0)) and ok
        for _, processor in self._processors:
            ok = processor.force_flush(timeout_millis) and ok
        for state in list(self._own_states.values()):
            state.flush()
        return ok

    def shutdown(self) -> None:
        """Finish async handlers (bounded) and stop the loop; idempotent."""
        deadline = time.monotonic() + 5.0
        for runner in list(self._runners.values()):
            runner.shutdown(max(deadline - time.monotonic(), 0.1))
        for _, processor in self._processors:
            processor.shutdown()
        for state in list(self._own_states.values()):
            state.close()


class _SetupModule:
    """Stands for the module of an extension defined in code: it only has ``setup``."""

    def __init__(self, setup: Callable[[ExtensionAPI], object]) -> None:
        self.setup = setup


def _is_async(handler: Handler) -> bool:
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


async def _awaitable(value: Any) -> Any:
    return await value


__all__ = ["ExtensionSpanProcessor"]
