"""Commands: a plain one that echoes its context, an async one, and one that uses state."""

from __future__ import annotations

import asyncio

import kit_telemetry as kt


def _echo(ctx: kt.ExtensionContext, args: str) -> str:
    span = "none" if ctx.span is None else ctx.span.name
    return f"session={ctx.session_id} extension={ctx.extension} span={span} args={args}"


async def _later(ctx: kt.ExtensionContext, args: str) -> str:
    await asyncio.sleep(0.01)
    return f"later {args}"


def _count(ctx: kt.ExtensionContext, args: str) -> int:
    count = int(ctx.get_state("count", 0)) + 1
    ctx.set_state("count", count)
    return count


def setup(api: kt.ExtensionAPI) -> None:
    api.register_command(kt.CommandDefinition(name="echo", description="echo", handler=_echo))
    api.register_command(kt.CommandDefinition(name="later", description="async", handler=_later))
    api.register_command(kt.CommandDefinition(name="count", description="state", handler=_count))
