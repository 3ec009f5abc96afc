"""A ``setup`` that registers a handler and a command, then raises: none of it may stay."""

from __future__ import annotations

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    api.on(kt.EventType.LLM_USAGE, lambda event, ctx: ctx.notify("half-loaded handler ran"))
    api.register_command(kt.CommandDefinition(name="half", handler=lambda ctx, args: "half"))
    raise RuntimeError("cannot reach the licence server")
