"""Helpers for testing agents instrumented with kit-telemetry.

``capture()`` yields a strict ``Telemetry`` wired to in-memory sinks::

    from kit_telemetry.testing import capture

    with capture() as cap:
        with cap.telemetry.session("s") as session, session.run("hi") as run:
            ...
        assert cap.metric("kit_agent_runs_total", agent="agent", stop_reason="end_turn") == 1
        assert [e.type for e in cap.events][:2] == [EventType.AGENT_START, EventType.USER_INPUT]
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from .events import Event, EventType
from .extensions.api import ExtensionAPI, ExtensionContext
from .telemetry import Telemetry


class Capture:
    """What ``capture()`` yields: the telemetry under test and what it produced."""

    def __init__(
        self, telemetry: Telemetry, exporter: InMemorySpanExporter, registry: CollectorRegistry
    ) -> None:
        self.telemetry = telemetry
        self.exporter = exporter
        self.registry = registry
        self.events: list[Event] = []

    def spans(self) -> list[ReadableSpan]:
        """Every finished span, in the order they ended."""
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        """The one finished span called ``name`` (AssertionError if none or several)."""
        found = [s for s in self.spans() if s.name == name]
        assert len(found) == 1, (
            f"expected one span {name!r}, found {len(found)}: {[s.name for s in self.spans()]}"
        )
        return found[0]

    def metric(self, name: str, **labels: str) -> float | None:
        """The current value of a sample in the Prometheus registry (None if absent)."""
        return self.registry.get_sample_value(name, labels)

    def events_of(self, event_type: EventType) -> list[Event]:
        """The delivered events of one type, in order."""
        return [e for e in self.events if e.type is event_type]


@contextmanager
def capture(**options: Any) -> Iterator[Capture]:
    """A strict ``Telemetry`` with an in-memory span exporter, a fresh registry and an event recorder.

    Keyword arguments are passed to ``Telemetry`` (for example ``budgets=[...]``).
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    registry = CollectorRegistry(auto_describe=True)
    options.setdefault("strict", True)
    telemetry = Telemetry(tracer_provider=provider, prometheus=registry, exporters=(), **options)
    # Runs after the extensions: spans reach the in-memory exporter synchronously.
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    cap = Capture(telemetry, exporter, registry)

    def record(event: Event, ctx: ExtensionContext) -> None:
        cap.events.append(event)

    def setup(api: ExtensionAPI) -> None:
        for event_type in EventType:
            api.on(event_type, record)

    telemetry.extension_processor.load_setup("kit_telemetry.testing", setup)
    try:
        yield cap
    finally:
        telemetry.shutdown()
