"""Cost of counting the spans of other code (a framework's or an SDK instrumentation's).

One run of another library = 1 ``invoke_agent`` span, 3 ``chat`` spans with usage (each
wrapping the SDK instrumentation's ``chat`` span of the same call, as a framework does)
and 5 ``execute_tool`` spans, made with the raw OpenTelemetry API. Measured in the same
process, interleaved, several rounds; medians reported:

- ``raw spans``: the spans alone, to a discarding exporter (the baseline).
- ``kit-telemetry``: the same spans on a provider joined by ``kt.configure``-style
  ``Telemetry(tracer_provider=...)``: aggregation, pricing, metrics, event delivery.
- ``kit-telemetry, no agent span``: the same calls and tools with no agent span around
  them (each call an implicit run of its own).

Run: ``.venv/bin/python benchmarks/bench_foreign.py [--runs 300] [--rounds 11]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Tracer
from prometheus_client import CollectorRegistry

import kit_telemetry as kt

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
}
USAGE = {
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.output_tokens": 80,
    "gen_ai.usage.cache_read.input_tokens": 200,
    "gen_ai.response.finish_reasons": ("stop",),
}


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def calls(tracer: Tracer) -> None:
    for tools in (2, 2, 1):
        with tracer.start_as_current_span("chat gpt-4o", attributes=CHAT) as outer:
            with tracer.start_as_current_span(
                "chat gpt-4o", kind=SpanKind.CLIENT, attributes=CHAT
            ) as inner:
                inner.set_attributes(USAGE)
            outer.set_attributes(USAGE)
        for _ in range(tools):
            with tracer.start_as_current_span(
                "execute_tool search",
                attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"},
            ):
                pass


def agent_run(tracer: Tracer) -> None:
    with tracer.start_as_current_span(
        "invoke_agent helper",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "helper"},
    ):
        calls(tracer)


def provider(with_kit: bool) -> tuple[TracerProvider, kt.Telemetry | None]:
    tracer_provider = TracerProvider()
    tel = None
    if with_kit:
        tel = kt.Telemetry(
            tracer_provider=tracer_provider, prometheus=CollectorRegistry(), exporters=()
        )
    tracer_provider.add_span_processor(SimpleSpanProcessor(Discard()))
    return tracer_provider, tel


def timed(work: Callable[[Tracer], None], tracer: Tracer, runs: int) -> float:
    gc.collect()
    start = time.perf_counter()
    for _ in range(runs):
        work(tracer)
    return (time.perf_counter() - start) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=11)
    args = parser.parse_args()
    raw, _ = provider(False)
    kit, tel = provider(True)
    raw_tracer, kit_tracer = raw.get_tracer("bench"), kit.get_tracer("bench")
    variants: dict[str, tuple[Callable[[Tracer], None], Tracer]] = {
        "raw spans": (agent_run, raw_tracer),
        "kit-telemetry": (agent_run, kit_tracer),
        "kit-telemetry, no agent span": (calls, kit_tracer),
    }
    for work, tracer in variants.values():
        timed(work, tracer, 50)  # warm up: price lookups, metric series
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (work, tracer) in variants.items():
            samples[name].append(timed(work, tracer, args.runs))
    base = statistics.median(samples["raw spans"])
    print(f"per run of another library's spans (median of {args.rounds} rounds x {args.runs})")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:30s} {median:9.1f} µs   x{median / base:.2f}")
    if tel is not None:
        tel.shutdown()
    raw.shutdown()


if __name__ == "__main__":
    main()
