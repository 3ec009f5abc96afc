"""An extension written for the Python agent's extension types; only its import line says
kit_telemetry (it was ``from agent.extensions import ...``)."""

from __future__ import annotations

from kit_telemetry import (
    AgentEndEvent,
    AgentStartEvent,
    EventType,
    ExtensionContext,
    SessionStartEvent,
    ToolDefinition,
    TurnEndEvent,
    TurnStartEvent,
)

__all__ = ["SessionStartEvent", "TurnStartEvent", "setup"]


def setup(api):  # type: ignore[no-untyped-def]
    api.register_tool(
        ToolDefinition(
            "echo",
            "repeat the text",
            {"type": "object", "properties": {"text": {"type": "string"}}},
            lambda args, ctx: args.get("text", ""),
        )
    )

    @api.on(EventType.AGENT_START)
    def on_start(event: AgentStartEvent, ctx: ExtensionContext) -> None:
        ctx.notify(f"prompt={event.data['prompt']}")

    @api.on(EventType.TURN_END)
    def on_turn_end(event: TurnEndEvent, ctx: ExtensionContext) -> None:
        ctx.notify(f"turn {event.data['turn_index']} message={event.message!r}")

    @api.on(EventType.AGENT_END)
    def on_end(event: AgentEndEvent, ctx: ExtensionContext) -> None:
        roles = [m["role"] for m in event.messages]
        ctx.notify(f"roles={roles} tools={[t.name for t in ctx.tools]} cwd={bool(ctx.cwd)}")
