"""``ExtensionRegistry``: the loaded extensions and what each registered, in load order.

An extension registers handlers (by event type or custom event name), commands, tools and
raw span processors. The registry keeps them per extension and, after each change, builds
the tables that dispatch reads: immutable tuples swapped whole, read without the lock.
Handlers run in extension load order, then registration order.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable

from opentelemetry.sdk.trace import SpanProcessor

from ..events import EventType
from ..tools import ToolDefinition
from .api import CommandDefinition, Handler, LoadedExtension

HandlerEntry = tuple[str, Handler, bool]
"""(extension, handler, is_async): one handler as dispatch calls it."""


def is_async(handler: Handler) -> bool:
    """``handler`` is an ``async def`` function, or an object with an async ``__call__``."""
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class Registration:
    """One loaded extension: where it came from and what it registered so far."""

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
        """What it registered, frozen."""
        return LoadedExtension(
            name=self.name,
            path=self.path,
            handlers=tuple(self.handlers),
            commands=tuple(self.commands),
            span_processors=tuple(self.processors),
            tools=tuple(self.tools),
        )


class ExtensionRegistry:
    """The registrations of the loaded extensions, and the dispatch tables built from them.

    Args:
        on_change: called (under the registry's lock) after the tables were rebuilt.

    Attributes:
        handlers: the handlers of each event type, in load order, then registration order.
        custom: the handlers of each custom event name (``on_custom``), in the same order.
        processors: (extension, processor) of every raw span processor, in the same order.
        fail_closed: the names of the extensions whose failures decide the safe way.
    """

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._lock = threading.Lock()
        self._extensions: dict[str, Registration] = {}
        self._commands: dict[str, tuple[str, CommandDefinition]] = {}
        self._tools: dict[str, tuple[str, ToolDefinition]] = {}
        self.handlers: dict[EventType, tuple[HandlerEntry, ...]] = {}
        self.custom: dict[str, tuple[HandlerEntry, ...]] = {}
        self.processors: tuple[tuple[str, SpanProcessor], ...] = ()
        self.fail_closed: frozenset[str] = frozenset()

    def get(self, name: str) -> Registration | None:
        """The registration of the loaded extension ``name``; None if none is loaded."""
        return self._extensions.get(name)

    def names(self) -> list[str]:
        """The names of the loaded extensions, in load order."""
        return list(self._extensions)

    def loaded(self) -> list[LoadedExtension]:
        """Every loaded extension, in load order."""
        return [r.snapshot() for r in self._extensions.values()]

    def add(self, registration: Registration) -> None:
        """Register an extension (last in load order) before its ``setup`` runs."""
        with self._lock:
            self._extensions[registration.name] = registration

    def remove(self, name: str) -> None:
        """Forget an extension and everything it registered."""
        with self._lock:
            self._extensions.pop(name, None)
            self._commands = {k: v for k, v in self._commands.items() if v[0] != name}
            self._tools = {k: v for k, v in self._tools.items() if v[0] != name}
            self._rebuild()

    def reorder(self, order: list[str]) -> None:
        """Put the loaded extensions back in ``order`` (a reloaded one in its load position)."""
        with self._lock:
            self._extensions = {n: self._extensions[n] for n in order if n in self._extensions}
            self._rebuild()

    def add_handler(self, extension: str, event_type: EventType, handler: Handler) -> None:
        """Add ``handler`` for events of ``event_type``, after those registered before."""
        with self._lock:
            self._extensions[extension].handlers.append((event_type, handler))
            self._rebuild()

    def add_custom_handler(self, extension: str, name: str, handler: Handler) -> None:
        """Add ``handler`` for the custom events called ``name``."""
        with self._lock:
            self._extensions[extension].custom.append((name, handler))
            self._rebuild()

    def add_command(self, extension: str, command: CommandDefinition) -> None:
        """Add ``command`` (``ValueError`` if another extension has its name)."""
        with self._lock:
            if command.name in self._commands:
                owner = self._commands[command.name][0]
                raise ValueError(
                    f"command {command.name!r} is already registered by extension {owner!r}"
                )
            self._extensions[extension].commands.append(command)
            self._commands[command.name] = (extension, command)

    def add_tool(self, extension: str, tool: ToolDefinition) -> None:
        """Add ``tool`` (``ValueError`` if another extension has its name)."""
        with self._lock:
            if tool.name in self._tools:
                owner = self._tools[tool.name][0]
                raise ValueError(f"tool {tool.name!r} is already registered by extension {owner!r}")
            self._extensions[extension].tools.append(tool)
            self._tools[tool.name] = (extension, tool)

    def add_span_processor(self, extension: str, processor: SpanProcessor) -> None:
        """Add ``processor``, to see every span start and end."""
        with self._lock:
            self._extensions[extension].processors.append(processor)
            self._rebuild()

    def find_command(self, name: str) -> tuple[str, CommandDefinition] | None:
        """The extension that registered command ``name``, and the command; None if none did."""
        return self._commands.get(name)

    def command_names(self) -> list[str]:
        """The names of every registered command, sorted."""
        return sorted(self._commands)

    def find_tool(self, name: str) -> tuple[str, ToolDefinition] | None:
        """The extension that registered tool ``name``, and the tool; None if none did."""
        return self._tools.get(name)

    def tool_definitions(self) -> list[ToolDefinition]:
        """Every registered tool, in extension load order."""
        return [t for ext in list(self._extensions.values()) for t in ext.tools]

    def _rebuild(self) -> None:
        # Immutable tuples, swapped whole: dispatch reads them without the lock.
        table: dict[EventType, list[HandlerEntry]] = {}
        custom: dict[str, list[HandlerEntry]] = {}
        processors: list[tuple[str, SpanProcessor]] = []
        for ext in self._extensions.values():
            for event_type, handler in ext.handlers:
                table.setdefault(event_type, []).append((ext.name, handler, is_async(handler)))
            for name, handler in ext.custom:
                custom.setdefault(name, []).append((ext.name, handler, is_async(handler)))
            processors.extend((ext.name, p) for p in ext.processors)
        self.handlers = {k: tuple(v) for k, v in table.items()}
        self.custom = {k: tuple(v) for k, v in custom.items()}
        self.processors = tuple(processors)
        self.fail_closed = frozenset(e.name for e in self._extensions.values() if e.fail_closed)
        self._on_change()
