"""An ``async def setup``: it awaits before registering, and says which thread ran it."""

from __future__ import annotations

import asyncio
import threading

import kit_telemetry as kt


async def setup(api: kt.ExtensionAPI) -> None:
    await asyncio.sleep(0.01)
    api.notify(f"setup ran on {threading.current_thread().name}")

    @api.on(kt.EventType.AGENT_END)
    def done(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        ctx.notify(f"agent_end llm_calls={event.llm_call_count}")
