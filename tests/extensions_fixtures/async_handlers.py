"""``async def`` handlers; earlier tool calls sleep longer, so only ordering keeps them in order."""

from __future__ import annotations

import asyncio
import threading

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    @api.on(kt.EventType.TOOL_CALL)
    async def on_tool_call(event: kt.ToolCallEvent, ctx: kt.ExtensionContext) -> None:
        index = int((event.call_id or "c-0").rsplit("-", 1)[1])
        await asyncio.sleep(0.03 * max(4 - index, 0))
        ctx.notify(f"{ctx.session_id} {event.call_id} on {threading.current_thread().name}")

    @api.on(kt.EventType.AGENT_END)
    async def on_agent_end(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        await asyncio.sleep(0.1)
        ctx.notify(f"{ctx.session_id} agent_end tools={event.tool_call_count}")
