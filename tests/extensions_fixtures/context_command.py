"""A ``ctx`` command that hands its ``ExtensionContext`` back (for state tests)."""

from __future__ import annotations

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    api.register_command(
        kt.CommandDefinition(
            name="ctx",
            description="the command's own context",
            handler=lambda ctx, args: ctx,
        )
    )
