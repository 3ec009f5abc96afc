"""A handler that tries to change the event it was given (events are frozen)."""

from __future__ import annotations

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    @api.on(kt.EventType.LLM_USAGE)
    def rewrite(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        event.input_tokens = 0  # type: ignore[misc]

    @api.on(kt.EventType.LLM_USAGE)
    def observe(event: kt.LLMUsageEvent, ctx: kt.ExtensionContext) -> None:
        ctx.notify(f"input_tokens={event.input_tokens}")
