"""``turn.call_tool``: running an extension's tool inside an ``execute_tool`` span.

The tool call goes through every decision point of a ``turn.tool_call``: a stopped run or a
``tool_call`` handler's ``Block`` raises ``Blocked``; ``tool_result`` handlers may replace
the outcome. What the model did wrong (an unknown tool, arguments that break the schema) and
what the tool did wrong (its handler raised) are ``ToolOutcome(..., is_error=True)``: the
model reads them and can correct itself.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ..schema import schema_errors
from ..tools import ToolDefinition, ToolOutcome
from ..validation.checks import to_text
from .calls import ToolCall
from .scope import readable_span

if TYPE_CHECKING:
    from .run import Turn


def _prepare(turn: Turn, name: str, arguments: Any) -> tuple[str, ToolDefinition] | ToolOutcome:
    """The tool to run, or the error outcome the model reads instead."""
    extensions = turn._runtime.extensions
    found = extensions.find_tool(name) if extensions is not None and isinstance(name, str) else None
    if found is None:
        known = [d.name for d in extensions.tool_definitions()] if extensions is not None else []
        return ToolOutcome(
            f"Error: unknown tool {name!r}; available tools: {', '.join(known) or 'none'}", True
        )
    problems = schema_errors(arguments, found[1].parameters)
    if problems:
        return ToolOutcome(
            f"Error: invalid arguments for tool {name!r}: {'; '.join(problems)}", True
        )
    return found


def _finish(tool: ToolCall, result: Any, is_error: bool) -> ToolOutcome:
    tool.set_result(result, is_error=is_error)
    return ToolOutcome(to_text(tool.result), tool.is_error)


def call_tool(turn: Turn, name: str, arguments: Any, call_id: str | None) -> ToolOutcome:
    """Run tool ``name`` (sync; an async handler runs on its extension's loop)."""
    with turn.tool_call(name, call_id=call_id, arguments=arguments) as tool:
        prepared = _prepare(turn, name, arguments)
        if isinstance(prepared, ToolOutcome):
            return _finish(tool, prepared.content, True)
        extension, definition = prepared
        runtime = turn._runtime.extensions
        assert runtime is not None
        ctx = runtime.tool_context(extension, turn.run.session.session_id, readable_span(tool))
        try:
            result = definition.handler(arguments, ctx)
            if inspect.isawaitable(result):
                result = runtime.run_coroutine(extension, _await(result))
        except Exception as exc:
            return _finish(tool, f"Error: {type(exc).__name__}: {exc}", True)
        return _finish(tool, result, False)


async def acall_tool(turn: Turn, name: str, arguments: Any, call_id: str | None) -> ToolOutcome:
    """Run tool ``name`` from async code (an async handler is awaited on the caller's loop)."""
    async with turn.tool_call(name, call_id=call_id, arguments=arguments) as tool:
        prepared = _prepare(turn, name, arguments)
        if isinstance(prepared, ToolOutcome):
            return _finish(tool, prepared.content, True)
        extension, definition = prepared
        runtime = turn._runtime.extensions
        assert runtime is not None
        ctx = runtime.tool_context(extension, turn.run.session.session_id, readable_span(tool))
        try:
            result = definition.handler(arguments, ctx)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return _finish(tool, f"Error: {type(exc).__name__}: {exc}", True)
        return _finish(tool, result, False)


async def _await(value: Any) -> Any:
    return await value
