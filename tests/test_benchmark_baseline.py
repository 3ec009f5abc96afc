"""The overhead benchmark compares like with like: its hand-made baseline makes the same
spans, with the same attributes and span events, as kit-telemetry does for the same run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_overhead

# Values that differ from run to run by nature, not by instrumentation.
VARYING = {"kit.run.duration_ms", "kit.run.id"}


def _spans(make: Any) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    variant = make(provider)
    variant.run()
    spans = [s for s in exporter.get_finished_spans() if not s.name.startswith("kit.session")]
    variant.close()
    return spans


def _shape(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    by_id = {s.context.span_id: s.name for s in spans}
    return [
        (
            s.name,
            s.kind,
            by_id.get(s.parent.span_id) if s.parent is not None else None,
            {k: v for k, v in (s.attributes or {}).items() if k not in VARYING},
            sorted(VARYING & set(s.attributes or {})),
            [(e.name, dict(e.attributes or {})) for e in s.events],
        )
        for s in spans
    ]


def test_hand_made_baseline_makes_the_same_spans_as_kit_telemetry() -> None:
    """A ratio against a baseline that does less would flatter nobody and mislead everyone."""
    raw = _spans(lambda provider: bench_overhead.raw_run_factory(False, provider))
    kit = _spans(bench_overhead.kit_run_factory)
    assert len(kit) == 12
    assert _shape(raw) == _shape(kit)
