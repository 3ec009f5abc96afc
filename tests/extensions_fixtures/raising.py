"""A handler that raises, registered before one that works (error isolation)."""

from __future__ import annotations

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    @api.on(kt.EventType.LLM_USAGE)
    def explode(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        raise RuntimeError(f"boom at step {event.step}")

    @api.on(kt.EventType.LLM_USAGE)
    def after(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        ctx.notify(f"after step {event.step}")
