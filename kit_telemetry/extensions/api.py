"""What an extension sees: ``ExtensionAPI`` at set-up, ``ExtensionContext`` in handlers."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from ..events import EventType, JSONValue, UsageTotals
from ..tools import ToolDefinition
from .detached import DetachedHost

if TYPE_CHECKING:
    from ..state import SessionState

Handler = Callable[[Any, "ExtensionContext"], Any]
_H = TypeVar("_H", bound=Handler)

NOTIFY_TYPES = ("info", "warning", "error")


class ContextHost(Protocol):
    """What a context needs (``ExtensionSpanProcessor``, or ``DetachedHost`` when built by hand)."""

    def emit_custom(
        self, extension: str, session_id: str, name: str, payload: Any, span: ReadableSpan | None
    ) -> None: ...
    def tool_definitions(self) -> list[ToolDefinition]: ...
    def notify(self, extension: str, message: str, type: str) -> None: ...
    def session_state(self, session_id: str) -> SessionState: ...
    def session_usage(self, session_id: str) -> UsageTotals: ...


class Host(ContextHost, Protocol):
    """What the extension runtime offers the API and contexts (``ExtensionSpanProcessor``)."""

    def add_handler(self, extension: str, event_type: EventType, handler: Handler) -> None: ...
    def add_custom_handler(self, extension: str, name: str, handler: Handler) -> None: ...
    def add_command(self, extension: str, command: CommandDefinition) -> None: ...
    def add_tool(self, extension: str, tool: ToolDefinition) -> None: ...
    def add_span_processor(self, extension: str, processor: SpanProcessor) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandDefinition:
    """A command an extension offers; ``handler(ctx, args)`` runs it."""

    name: str
    description: str = ""
    handler: Callable[[ExtensionContext, str], Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise TypeError(f"command name must be a non-empty string, got {self.name!r}")
        if not self.name:
            raise ValueError("command name must be a non-empty string, got ''")
        if not isinstance(self.description, str):
            raise TypeError(
                f"command {self.name!r}: description must be a string, got {self.description!r}"
            )
        if not callable(self.handler):
            raise TypeError(
                f"command {self.name!r}: handler must be callable, got {self.handler!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedExtension:
    """A loaded extension: where it came from and what it registered."""

    name: str
    path: str
    handlers: tuple[tuple[EventType, Handler], ...] = ()
    commands: tuple[CommandDefinition, ...] = ()
    span_processors: tuple[SpanProcessor, ...] = field(default=())
    tools: tuple[ToolDefinition, ...] = ()


class ExtensionAPI:
    """Given to an extension's ``setup(api)``: register handlers, commands and processors."""

    __slots__ = ("_host", "name")

    def __init__(self, host: Host, name: str) -> None:
        self._host = host
        self.name = name

    @overload
    def on(self, event_type: EventType | str, handler: None = None) -> Callable[[_H], _H]: ...

    @overload
    def on(self, event_type: EventType | str, handler: _H) -> _H: ...

    def on(self, event_type: EventType | str, handler: _H | None = None) -> Any:
        """Register ``handler(event, ctx)`` for ``event_type``; a decorator when ``handler`` is omitted.

        Raises:
            ValueError: ``event_type`` is not an ``EventType`` (or one of its values).
            TypeError: ``handler`` is not callable.
        """
        try:
            kind = EventType(event_type)
        except ValueError:
            allowed = ", ".join(t.value for t in EventType)
            raise ValueError(
                f"unknown event type {event_type!r}; expected one of: {allowed}"
            ) from None

        def register(fn: _H) -> _H:
            if not callable(fn):
                raise TypeError(f"handler for {kind.value} must be callable, got {fn!r}")
            self._host.add_handler(self.name, kind, fn)
            return fn

        if handler is None:
            return register
        return register(handler)

    def on_custom(self, name: str, handler: Handler) -> Handler:
        """Register ``handler(event, ctx)`` for the custom events called ``name``.

        Other extensions send them with ``ctx.emit(name, payload)``; the handler gets a
        ``CustomEvent`` (``name``, ``payload``, ``source``: the sender).

        Raises:
            TypeError: ``name`` is not a non-empty string, or ``handler`` is not callable.
        """
        _check_custom_name(name)
        if not callable(handler):
            raise TypeError(f"handler for custom event {name!r} must be callable, got {handler!r}")
        self._host.add_custom_handler(self.name, name, handler)
        return handler

    def register_command(self, command: CommandDefinition) -> None:
        """Offer a command, run with ``Telemetry.run_command(name, args)``."""
        if not isinstance(command, CommandDefinition):
            raise TypeError(f"register_command takes a CommandDefinition, got {command!r}")
        self._host.add_command(self.name, command)

    def register_tool(self, tool: ToolDefinition) -> None:
        """Offer an LLM-callable tool (``tel.tool_definitions()``, ``turn.call_tool(name, ...)``).

        Raises:
            TypeError: ``tool`` is not a ``ToolDefinition``.
            ValueError: another extension registered a tool of that name.
        """
        if not isinstance(tool, ToolDefinition):
            raise TypeError(f"register_tool takes a ToolDefinition, got {tool!r}")
        self._host.add_tool(self.name, tool)

    def add_span_processor(self, processor: SpanProcessor) -> None:
        """Receive every raw span start and end (after this extension's handlers)."""
        if not isinstance(processor, SpanProcessor):
            raise TypeError(f"add_span_processor takes a SpanProcessor, got {processor!r}")
        self._host.add_span_processor(self.name, processor)

    def notify(self, message: str, type: str = "info") -> None:
        """Tell the user something (routed to the host's notifier; default: the logger).

        Raises:
            TypeError: ``message`` is not a string.
            ValueError: ``type`` is not one of ``NOTIFY_TYPES``.
        """
        _check_notice(message, type)
        self._host.notify(self.name, message, type)


class ExtensionContext:
    """Given to each handler call: the session, the span and the session's state.

    Attributes:
        agent: the ``Run`` handle current when the handler was called (``kt.current_run()``;
            None outside a run of this SDK, e.g. for spans of other libraries, and for a
            session's events); for a context built by hand, the ``agent`` given.
        cwd: the working directory of the extensions.
        extension: the name of the extension the handler belongs to.
        session_id: the session of the event (``""`` when there is none).
        span: the span the event came from (read-only), if any.
    """

    __slots__ = ("_host", "agent", "cwd", "extension", "session_id", "span")

    def __init__(
        self,
        agent: Any = None,
        cwd: str | os.PathLike[str] = ".",
        tools: Iterable[ToolDefinition] = (),
    ) -> None:
        """A context on its own, as the Python agent's ``ExtensionContext(agent, cwd, tools)``.

        For an extension's own tests: ``ctx.tools`` lists ``tools``, state lives in memory,
        notices are logged, ``usage`` is zero and ``emit`` reaches no one (no other extension
        is loaded). The SDK builds the contexts of real handler calls with ``attached``.

        Raises:
            TypeError: an item of ``tools`` is not a ``ToolDefinition``.
        """
        self._host: ContextHost = DetachedHost(tools)
        self.agent = agent
        self.extension = ""
        self.session_id = ""
        self.cwd = os.fspath(cwd)
        self.span: ReadableSpan | None = None

    @classmethod
    def attached(
        cls,
        host: ContextHost,
        extension: str,
        session_id: str,
        cwd: str,
        span: ReadableSpan | None,
        agent: Any = None,
    ) -> ExtensionContext:
        """The context of one handler call of ``extension``, served by ``host``."""
        # Positional parameters: one context is built per handler call, and a call with
        # keywords costs more.
        ctx = cls.__new__(cls)
        ctx._host = host
        ctx.agent = agent
        ctx.extension = extension
        ctx.session_id = session_id
        ctx.cwd = cwd
        ctx.span = span
        return ctx

    @property
    def tools(self) -> list[ToolDefinition]:
        """Every tool the extensions registered, in load order."""
        return self._host.tool_definitions()

    @property
    def usage(self) -> UsageTotals:
        """The session's totals so far (frozen), read when accessed.

        A sync handler reads them as of its event; an ``async def`` handler runs later, on
        the background loop, and reads them as of then.
        """
        return self._host.session_usage(self.session_id)

    def get_state(self, key: str, default: JSONValue = None) -> JSONValue:
        """A value of this session's state, or ``default``."""
        return self._host.session_state(self.session_id).get(key, default)

    def set_state(self, key: str, value: JSONValue) -> None:
        """Store a JSON value for this session (persisted beside the session file).

        Raises:
            UsageError: a strict ``Telemetry``, and the key is not a non-empty string or the
                value is not JSON (lenient: the write is dropped, logged once and counted).
        """
        self._host.session_state(self.session_id).set(key, value)

    def delete_state(self, key: str) -> bool:
        """Remove a key; True if it existed."""
        return self._host.session_state(self.session_id).delete(key)

    def list_state(self) -> dict[str, JSONValue]:
        """A copy of this session's whole state."""
        return self._host.session_state(self.session_id).items()

    def emit(self, name: str, payload: JSONValue = None) -> None:
        """Send the other extensions a custom event (``api.on_custom(name, ...)`` receives it).

        Delivered at once, on this thread, to the sync handlers (async ones are scheduled).

        Raises:
            TypeError: ``name`` is not a non-empty string.
        """
        _check_custom_name(name)
        self._host.emit_custom(self.extension, self.session_id, name, payload, self.span)

    def notify(self, message: str, type: str = "info") -> None:
        """Tell the user something, attributed to this extension.

        Raises:
            TypeError: ``message`` is not a string.
            ValueError: ``type`` is not one of ``NOTIFY_TYPES``.
        """
        _check_notice(message, type)
        self._host.notify(self.extension, message, type)


def _check_custom_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"custom event names are non-empty strings, got {name!r}")


def _check_notice(message: object, type: object) -> None:
    # Checked here, so the error names notify's own arguments.
    if not isinstance(message, str):
        raise TypeError(f"notify message must be a string, got {message!r}")
    if type not in NOTIFY_TYPES:
        raise ValueError(f"notify type {type!r} is not one of {', '.join(NOTIFY_TYPES)}")
