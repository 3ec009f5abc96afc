"""Notifies every event as JSON, with the span it came from and the session totals so far.

Tests turn the messages back into events with ``kt.event_from_dict``.
"""

from __future__ import annotations

import json

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    def record(event: kt.Event, ctx: kt.ExtensionContext) -> None:
        usage = ctx.usage
        ctx.notify(
            json.dumps(
                {
                    "event": event.to_dict(),
                    "span": None if ctx.span is None else ctx.span.name,
                    "session_calls": usage.llm_call_count,
                    "session_cost_usd": usage.cost_usd,
                }
            )
        )

    for event_type in kt.EventType:
        api.on(event_type, record)

    @api.on(kt.EventType.TOOL_RESULT)
    def remember_tools(event: kt.ToolResultEvent, ctx: kt.ExtensionContext) -> None:
        ctx.set_state("tools", [*ctx.get_state("tools", []), event.tool_name])
