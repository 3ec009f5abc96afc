"""Tools from extensions: ``ToolDefinition``, ``ToolOutcome`` and ``tool_schemas``.

An extension registers an LLM-callable tool with ``api.register_tool(kt.ToolDefinition(...))``;
the agent lists them with ``tel.tool_definitions()``, renders them into its model request
with ``tool_schemas(...)`` and runs one with ``turn.call_tool(name, arguments)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

# (arguments, ctx: ExtensionContext), plain or ``async def``; returns text or JSON. ctx is
# not spelt out: extensions import this module, so it must not import them.
ToolHandler = Callable[[dict[str, Any], Any], Any]
"""``handler(arguments, ctx)``: plain or ``async def``; returns the result (text or JSON)."""

# What both OpenAI and Anthropic accept as a tool name.
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
FORMATS = ("openai", "anthropic")


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    """An LLM-callable tool offered by an extension.

    Attributes:
        name: 1-64 letters, digits, ``_`` or ``-`` (what the providers accept).
        description: what the model reads to decide when to call it.
        parameters: a JSON Schema object (``{"type": "object", "properties": ...}``).
        handler: ``handler(arguments, ctx)``, plain or async; its return value is the result.

    Raises:
        TypeError: a field has the wrong type.
        ValueError: the name is not one the providers accept, or ``parameters`` is no object schema.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]
    handler: ToolHandler

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(
                f"tool name must be 1-64 letters, digits, '_' or '-', got {self.name!r}"
            )
        if not isinstance(self.description, str):
            raise TypeError(
                f"tool {self.name!r}: description must be a string, got {self.description!r}"
            )
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            raise ValueError(
                f"tool {self.name!r}: parameters must be a JSON Schema object "
                f'({{"type": "object", ...}}), got {self.parameters!r}'
            )
        if not callable(self.handler):
            raise TypeError(f"tool {self.name!r}: handler must be callable, got {self.handler!r}")


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What ``turn.call_tool`` returns: the text to pass to the model, and whether it failed."""

    content: str
    is_error: bool = False


def tool_schemas(
    definitions: Iterable[ToolDefinition], format: Literal["openai", "anthropic"] = "openai"
) -> list[dict[str, Any]]:
    """The tools in a provider's request shape.

    ``"openai"``: ``{"type": "function", "function": {name, description, parameters}}``
    (Chat Completions); ``"anthropic"``: ``{name, description, input_schema}`` (Messages).

    Raises:
        ValueError: ``format`` is not one of ``FORMATS``.
    """
    if format not in FORMATS:
        raise ValueError(f"tool_schemas format {format!r} is not one of {', '.join(FORMATS)}")
    out: list[dict[str, Any]] = []
    for d in definitions:
        schema = dict(d.parameters)
        if format == "openai":
            out.append(
                {
                    "type": "function",
                    "function": {
                        "name": d.name,
                        "description": d.description,
                        "parameters": schema,
                    },
                }
            )
        else:
            out.append({"name": d.name, "description": d.description, "input_schema": schema})
    return out
