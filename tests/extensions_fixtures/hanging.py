"""An ``async def`` handler that outlives any sensible timeout, and handlers after it."""

from __future__ import annotations

import asyncio

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    @api.on(kt.EventType.AGENT_START)
    async def hang(event: kt.AgentStartEvent, ctx: kt.ExtensionContext) -> None:
        await asyncio.sleep(0.6)
        ctx.notify("hang woke up")

    @api.on(kt.EventType.AGENT_END)
    async def after(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        ctx.notify("async agent_end ran")

    @api.on(kt.EventType.AGENT_END)
    async def failing(event: kt.AgentEndEvent, ctx: kt.ExtensionContext) -> None:
        raise ValueError("async handler failed")
