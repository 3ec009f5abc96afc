"""Notifies the wire name of every event it receives, so tests can read the order."""

from __future__ import annotations

import kit_telemetry as kt


def setup(api: kt.ExtensionAPI) -> None:
    def record(event: kt.Event, ctx: kt.ExtensionContext) -> None:
        ctx.notify(event.type.value)

    for event_type in kt.EventType:
        api.on(event_type, record)
