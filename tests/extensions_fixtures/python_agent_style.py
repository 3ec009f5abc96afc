"""An extension written for the Python agent's extension types; only its import line says
kit_telemetry (it was ``from agent.extensions import ...``).

Its handlers are module functions so that its own tests (``tests/test_compat_types.py``)
can call them with ``Event(type, data)`` and ``ExtensionContext(agent, cwd, tools)``.
"""

from __future__ import annotations

from kit_telemetry import (
    AgentEndEvent,
    AgentStartEvent,
    Event,
    EventType,
    ExtensionContext,
    SessionStartEvent,
    ToolDefinition,
    TurnEndEvent,
    TurnStartEvent,
)

__all__ = ["ECHO", "SessionStartEvent", "TurnStartEvent", "on_end", "on_start", "setup"]

ECHO = ToolDefinition(
    "echo",
    "repeat the text",
    {"type": "object", "properties": {"text": {"type": "string"}}},
    lambda args, ctx: args.get("text", ""),
)


def setup(api):  # type: ignore[no-untyped-def]
    api.register_tool(ECHO)
    api.on(EventType.AGENT_START, on_start)
    api.on(EventType.TURN_END, on_turn_end)
    api.on(EventType.AGENT_END, on_end)


def on_start(event: Event, ctx: ExtensionContext) -> None:
    assert isinstance(event, AgentStartEvent) and event.type is EventType.AGENT_START
    ctx.set_state("prompts", [*ctx.get_state("prompts", []), event.data["prompt"]])
    agent = getattr(ctx.agent, "agent_name", None)
    ctx.notify(f"prompt={event.data['prompt']} agent={agent}")


def on_turn_end(event: TurnEndEvent, ctx: ExtensionContext) -> None:
    ctx.notify(f"turn {event.data['turn_index']} message={event.message!r}")


def on_end(event: Event, ctx: ExtensionContext) -> None:
    assert isinstance(event, AgentEndEvent)
    roles = [m["role"] for m in event.data["messages"]]
    prompts = ctx.get_state("prompts", [])
    ctx.notify(
        f"roles={roles} tools={[t.name for t in ctx.tools]} cwd={bool(ctx.cwd)} prompts={prompts}"
    )
