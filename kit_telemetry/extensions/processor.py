"""``ExtensionSpanProcessor``: the handler runtime, as an OpenTelemetry span processor.

It sits after the ``UsageAggregator`` on the same provider and is the aggregator's event
sink: for each span start and end, the aggregator hands it the events it built, and its
``EventDispatcher`` calls the handlers registered for them (:mod:`.dispatch`). Then the span
goes to the extensions' own raw span processors. It loads extensions into its
``ExtensionRegistry`` (:mod:`.registry`), serves their ``ExtensionAPI`` and contexts (the
``Host`` protocol: state, notices, usage, commands, tools) and answers the instrumentation's
decision points. A handler that raises is logged with its extension's name and counted
(:mod:`.handlers`); the next handler still runs and the agent never sees it.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ..aggregation import OPTIONAL_EVENTS, UsageAggregator
from ..decisions import Verdict
from ..errors import ExtensionLoadError, UnknownCommandError
from ..events import Event, EventType, UsageTotals
from ..instrumentation import current_run, current_session
from ..tools import ToolDefinition
from .api import (
    CommandDefinition,
    ExtensionAPI,
    ExtensionContext,
    Handler,
    LoadedExtension,
)
from .dispatch import EventDispatcher
from .handlers import HandlerErrorMetrics, HandlerRunner
from .loader import extension_name, import_extension, reimport
from .registry import ExtensionRegistry, Registration, is_async

if TYPE_CHECKING:
    from ..instrumentation import Session
    from ..state import SessionState

logger = logging.getLogger("kit_telemetry")

Notifier = Callable[[str, str, str], None]  # (extension, message, type)


def _log_notifier(extension: str, message: str, type: str) -> None:
    level = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[type]
    logger.log(level, "[%s] %s", extension, message)


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
        self._on_error = on_error
        self._cwd = os.getcwd()
        self._lock = threading.Lock()
        self._runner = HandlerRunner(timeout_s=handler_timeout_s, metrics=metrics, strict=strict)
        self._registry = ExtensionRegistry(on_change=self._want_events)
        self._dispatcher = EventDispatcher(self, self._registry, self._runner, self._cwd)
        aggregator.want_events(())
        aggregator.set_event_sink(self._dispatcher.dispatch)

    @property
    def strict(self) -> bool:
        """Handler errors are re-raised (for tests)."""
        return self._runner.strict

    @strict.setter
    def strict(self, value: bool) -> None:
        self._runner.strict = value

    def _want_events(self) -> None:
        # The aggregator builds the optional events only for handlers that want them.
        handlers = self._registry.handlers
        self._aggregator.want_events([t for t in OPTIONAL_EVENTS if t in handlers])

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
            self._check_not_loaded(name)
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
        self._check_not_loaded(name)
        path = getattr(setup, "__module__", None) or name
        return self._setup(name, name, path, _SetupModule(setup), fail_closed=fail_closed)

    def reload(self, name: str) -> LoadedExtension:
        """Re-import a loaded extension and re-run its ``setup``; session state is untouched."""
        registered = self._registry.get(name)
        if registered is None:
            raise ExtensionLoadError(
                f"no extension named {name!r} is loaded; loaded: {sorted(self._registry.names())}"
            )
        module = reimport(registered.spec, registered.path)
        order = self._registry.names()
        self._registry.remove(name)
        loaded = self._setup(
            name, registered.spec, registered.path, module, fail_closed=registered.fail_closed
        )
        self._registry.reorder(order)  # back in its load position: handler order is load order
        return loaded

    def loaded(self) -> list[LoadedExtension]:
        """Every loaded extension, in load order."""
        return self._registry.loaded()

    def _check_not_loaded(self, name: str) -> None:
        registered = self._registry.get(name)
        if registered is not None:
            raise ExtensionLoadError(
                f"extension {name!r} is already loaded (from {registered.path})"
            )

    def _setup(
        self, name: str, spec: str, path: str, module: Any, *, fail_closed: bool = False
    ) -> LoadedExtension:
        setup = getattr(module, "setup", None)
        if not callable(setup):
            raise ExtensionLoadError(f"extension {name!r} ({path}) has no setup(api) function")
        registered = Registration(name, spec, path, fail_closed=fail_closed)
        self._registry.add(registered)
        api = ExtensionAPI(self, name)
        try:
            result = setup(api)
            if inspect.isawaitable(result):
                self._runner.async_runner(name).run(_awaitable(result), timeout_s=60)
        except BaseException as exc:
            self._registry.remove(name)
            raise ExtensionLoadError(
                f"extension {name!r}: setup() raised {type(exc).__name__}: {exc}"
            ) from exc
        return registered.snapshot()

    # --- the Host protocol (called by ExtensionAPI / ExtensionContext) ---------------------
    def add_handler(self, extension: str, event_type: EventType, handler: Handler) -> None:
        """Run ``handler`` for events of ``event_type``, after those registered before."""
        if is_async(handler):
            self._runner.async_runner(extension)  # at registration, not in the middle of a run
        self._registry.add_handler(extension, event_type, handler)

    def add_custom_handler(self, extension: str, name: str, handler: Handler) -> None:
        """Run ``handler`` for the custom events called ``name``."""
        if is_async(handler):
            self._runner.async_runner(extension)
        self._registry.add_custom_handler(extension, name, handler)

    def add_command(self, extension: str, command: CommandDefinition) -> None:
        """Offer ``command`` (``ValueError`` if another extension has its name)."""
        self._registry.add_command(extension, command)

    def add_tool(self, extension: str, tool: ToolDefinition) -> None:
        """Offer ``tool`` (``ValueError`` if another extension has its name)."""
        self._registry.add_tool(extension, tool)

    def add_span_processor(self, extension: str, processor: SpanProcessor) -> None:
        """Hand every span start and end to ``processor`` as well."""
        self._registry.add_span_processor(extension, processor)

    def tool_definitions(self) -> list[ToolDefinition]:
        """Every registered tool, in extension load order."""
        return self._registry.tool_definitions()

    def find_tool(self, name: str) -> tuple[str, ToolDefinition] | None:
        """The extension that registered tool ``name``, and the tool; None if none did."""
        return self._registry.find_tool(name)

    def tool_context(
        self, extension: str, session_id: str, span: ReadableSpan | None
    ) -> ExtensionContext:
        """The context a tool's handler runs with."""
        return ExtensionContext.attached(
            self, extension, session_id, self._cwd, span, current_run()
        )

    def run_coroutine(self, extension: str, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on ``extension``'s loop and wait for its result (an async tool)."""
        return self._runner.async_runner(extension).run(coro)

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
        entry = self._registry.find_command(name)
        if entry is None:
            known = ", ".join(self._registry.command_names()) or "none"
            raise UnknownCommandError(f"unknown command {name!r}; known commands: {known}")
        extension, command = entry
        session = session or current_session()
        ctx = ExtensionContext.attached(
            self, extension, session.session_id if session else "", self._cwd, None, current_run()
        )
        result = command.handler(ctx, args)
        if inspect.isawaitable(result):
            return self._runner.async_runner(extension).run(_awaitable(result))
        return result

    # --- events and decision points (see EventDispatcher) --------------------------------------
    def emit(self, event: Event, span: ReadableSpan | None = None) -> None:
        """Deliver one event that did not come from a span (budget alerts, retries)."""
        self._dispatcher.dispatch((event,), span)

    def emit_custom(
        self, extension: str, session_id: str, name: str, payload: Any, span: ReadableSpan | None
    ) -> None:
        """Deliver ``ctx.emit(name, payload)`` of ``extension`` to the other extensions."""
        self._dispatcher.emit_custom(extension, session_id, name, payload, span)

    def decide(self, event: Event, span: ReadableSpan | None = None) -> Verdict | None:
        """Deliver ``event`` as a decision point and return the extensions' verdict, if any."""
        return self._dispatcher.decide(event, span)

    def has_handlers(self, event_type: EventType) -> bool:
        """Some extension registered a handler for ``event_type``."""
        return event_type in self._registry.handlers

    def any_stopped(self) -> bool:
        """Some run still going was stopped by an extension."""
        return self._dispatcher.any_stopped()

    def stopped(self, run_id: str) -> Verdict | None:
        """The ``Stop`` an extension gave the run ``run_id``, if it was stopped."""
        return self._dispatcher.stopped(run_id)

    def _report(self, component: str, exc: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(component, exc)

    # --- SpanProcessor -----------------------------------------------------------------------------
    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for extension, processor in self._registry.processors:
            try:
                processor.on_start(span, parent_context)
            except Exception as exc:
                self._runner.failed(extension, "span_start", exc)

    def on_end(self, span: ReadableSpan) -> None:
        for extension, processor in self._registry.processors:
            try:
                processor.on_end(span)
            except Exception as exc:
                self._runner.failed(extension, "span_end", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Wait for async handlers and the extensions' own processors."""
        deadline = time.monotonic() + timeout_millis / 1000
        ok = self._runner.flush(deadline)
        for _, processor in self._registry.processors:
            ok = processor.force_flush(timeout_millis) and ok
        for state in list(self._own_states.values()):
            state.flush()
        return ok

    def shutdown(self) -> None:
        """Finish async handlers (bounded) and stop the loop; idempotent."""
        self._runner.shutdown(time.monotonic() + 5.0)
        for _, processor in self._registry.processors:
            processor.shutdown()
        for state in list(self._own_states.values()):
            state.close()


class _SetupModule:
    """Stands for the module of an extension defined in code: it only has ``setup``."""

    def __init__(self, setup: Callable[[ExtensionAPI], object]) -> None:
        self.setup = setup


async def _awaitable(value: Any) -> Any:
    return await value


__all__ = ["ExtensionSpanProcessor"]
