"""``ExtensionSpanProcessor``: the handler runtime, as an OpenTelemetry span processor.

It sits after the ``UsageAggregator`` on the same provider and is the aggregator's event
sink: for each span start and end, the aggregator hands it the events it built, and it
calls the handlers registered for them, in extension load order, then registration order.
Then the span goes to the extensions' own raw span processors. A handler that raises is
logged with its extension's name and counted; the next handler still runs and the agent
never sees it.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ..aggregation import OPTIONAL_EVENTS, UsageAggregator
from ..errors import ExtensionLoadError, UnknownCommandError
from ..events import Event, EventType, UsageTotals
from ..instrumentation import current_session
from .api import (
    CommandDefinition,
    ExtensionAPI,
    ExtensionContext,
    Handler,
    LoadedExtension,
)
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


class _Registered:
    __slots__ = ("commands", "handlers", "name", "path", "processors", "spec")

    def __init__(self, name: str, spec: str, path: str) -> None:
        self.name = name
        self.spec = spec
        self.path = path
        self.handlers: list[tuple[EventType, Handler]] = []
        self.commands: list[CommandDefinition] = []
        self.processors: list[SpanProcessor] = []

    def snapshot(self) -> LoadedExtension:
        return LoadedExtension(
            name=self.name,
            path=self.path,
            handlers=tuple(self.handlers),
            commands=tuple(self.commands),
            span_processors=tuple(self.processors),
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
        self._loading: _Registered | None = None
        self._handler_timeout_s = handler_timeout_s
        self._async: AsyncRunner | None = None  # started for the first async handler
        aggregator.want_events(())
        aggregator.set_event_sink(self._dispatch)

    # --- loading ---------------------------------------------------------------------------
    def load(self, spec: str | os.PathLike[str], *, errors: str = "raise") -> LoadedExtension:
        """Import an extension and run its ``setup(api)`` (plain or async).

        Args:
            errors: "raise" raises ``ExtensionLoadError``; "log" logs it, counts it and
                returns an empty ``LoadedExtension`` so the other extensions still load.
        """
        text = os.fspath(spec)
        name = extension_name(text)
        try:
            if name in self._extensions:
                raise ExtensionLoadError(
                    f"extension {name!r} is already loaded (from {self._extensions[name].path})"
                )
            module, path = import_extension(text)
            return self._setup(name, text, path, module)
        except ExtensionLoadError as exc:
            if errors == "raise":
                raise
            logger.error("kit-telemetry: %s", exc, exc_info=exc)
            self._report("extension_load", exc)
            return LoadedExtension(name=name, path=text)

    def load_setup(self, name: str, setup: Callable[[ExtensionAPI], object]) -> LoadedExtension:
        """Run ``setup(api)`` of an extension defined in code (no module to import).

        Raises:
            ExtensionLoadError: an extension of that name is loaded, or ``setup`` raised.
        """
        if name in self._extensions:
            raise ExtensionLoadError(
                f"extension {name!r} is already loaded (from {self._extensions[name].path})"
            )
        path = getattr(setup, "__module__", None) or name
        return self._setup(name, name, path, _SetupModule(setup))

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
        loaded = self._setup(name, registered.spec, registered.path, module)
        with self._lock:  # back in its load position: handler order is load order
            self._extensions = {n: self._extensions[n] for n in order if n in self._extensions}
            self._rebuild()
        return loaded

    def loaded(self) -> list[LoadedExtension]:
        """Every loaded extension, in load order."""
        return [r.snapshot() for r in self._extensions.values()]

    def _setup(self, name: str, spec: str, path: str, module: Any) -> LoadedExtension:
        setup = getattr(module, "setup", None)
        if not callable(setup):
            raise ExtensionLoadError(f"extension {name!r} ({path}) has no setup(api) function")
        registered = _Registered(name, spec, path)
        with self._lock:
            self._extensions[name] = registered
        api = ExtensionAPI(self, name)
        try:
            result = setup(api)
            if inspect.isawaitable(result):
                self._async_runner().run(_awaitable(result), timeout_s=60)
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
            self._rebuild()

    # --- the Host protocol (called by ExtensionAPI / ExtensionContext) ---------------------
    def add_handler(self, extension: str, event_type: EventType, handler: Handler) -> None:
        """Run ``handler`` for events of ``event_type``, after those registered before."""
        if _is_async(handler):
            self._async_runner()  # at registration, not in the middle of an agent's run
        with self._lock:
            self._extensions[extension].handlers.append((event_type, handler))
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

    def add_span_processor(self, extension: str, processor: SpanProcessor) -> None:
        """Hand every span start and end to ``processor`` as well."""
        with self._lock:
            self._extensions[extension].processors.append(processor)
            self._rebuild()

    def _rebuild(self) -> None:
        # Immutable tuples, swapped whole: dispatch reads them without the lock.
        table: dict[EventType, list[tuple[str, Handler, bool]]] = {}
        processors: list[tuple[str, SpanProcessor]] = []
        for ext in self._extensions.values():
            for event_type, handler in ext.handlers:
                table.setdefault(event_type, []).append((ext.name, handler, _is_async(handler)))
            processors.extend((ext.name, p) for p in ext.processors)
        self._handlers = {k: tuple(v) for k, v in table.items()}
        self._processors = tuple(processors)
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
        ctx = ExtensionContext(
            self,
            extension=extension,
            session_id=session.session_id if session else "",
            cwd=self._cwd,
            span=None,
        )
        result = command.handler(ctx, args)
        if inspect.isawaitable(result):
            return self._async_runner().run(_awaitable(result))
        return result

    # --- dispatch ----------------------------------------------------------------------------
    def emit(self, event: Event, span: ReadableSpan | None = None) -> None:
        """Deliver one event that did not come from a span (budget alerts)."""
        self._dispatch((event,), span)

    def _dispatch(self, events: Sequence[Event], span: ReadableSpan | None) -> None:
        handlers_by_type = self._handlers
        cwd = self._cwd
        for event in events:
            handlers = handlers_by_type.get(event.type)
            if not handlers:
                continue
            for extension, handler, is_async in handlers:
                ctx = ExtensionContext(self, extension, event.session_id, cwd, span)
                if is_async:
                    self._submit_async(extension, handler, event, ctx)
                    continue
                try:
                    handler(event, ctx)
                except Exception as exc:
                    self._handler_failed(extension, event.type, exc)

    def _async_runner(self) -> AsyncRunner:
        # Imported and started for the first async handler: most agents register none, and
        # asyncio is a tenth of the package's import time.
        from .async_runner import AsyncRunner

        with self._lock:
            if self._async is None:
                self._async = AsyncRunner(
                    timeout_s=self._handler_timeout_s, on_timeout=self._handler_timed_out
                )
            return self._async

    def _submit_async(
        self, extension: str, handler: Handler, event: Event, ctx: ExtensionContext
    ) -> None:
        label = f"{extension}:{event.type.value}"
        self._async_runner().submit(
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
        runner = self._async
        ok = runner.flush(timeout_millis / 1000) if runner is not None else True
        for _, processor in self._processors:
            ok = processor.force_flush(timeout_millis) and ok
        for state in list(self._own_states.values()):
            state.flush()
        return ok

    def shutdown(self) -> None:
        """Finish async handlers (bounded) and stop the loop; idempotent."""
        if self._async is not None:
            self._async.shutdown()
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
