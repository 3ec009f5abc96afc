"""``add_span_processor``: one processor that reports every raw span, one that raises."""

from __future__ import annotations

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

import kit_telemetry as kt


class Reporter(SpanProcessor):
    """Notifies each span start and end, and flushes and shutdowns."""

    def __init__(self, api: kt.ExtensionAPI) -> None:
        self._api = api

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self._api.notify(f"start {span.name}")

    def on_end(self, span: ReadableSpan) -> None:
        self._api.notify(f"end {span.name}")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self._api.notify("force_flush")
        return True

    def shutdown(self) -> None:
        self._api.notify("shutdown")


class Broken(SpanProcessor):
    """Raises on every span end."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError(f"cannot process {span.name}")


def setup(api: kt.ExtensionAPI) -> None:
    api.add_span_processor(Broken())
    api.add_span_processor(Reporter(api))
