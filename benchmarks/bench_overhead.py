"""Overhead of kit-telemetry per agent run, against the same work done by hand.

One run = 1 run span, 3 turns, 3 LLM calls with usage, 5 tool calls. Measured in the same
process, interleaved, several rounds; medians reported:

- ``raw spans``: the same 12 spans made by hand with the raw OpenTelemetry SDK, the
  idiomatic way (``tracer.start_as_current_span`` blocks, which also attach the context and
  record exceptions, as kit-telemetry's blocks do), with the same attributes and span
  event: a hand-instrumented agent that wants the run totals on its run span sums them
  as it goes, as this one does.
- ``raw spans + metrics``: the same, plus the same metrics recorded through the
  OpenTelemetry metrics SDK (token usage and duration histograms, call/token/cost/tool
  counters, run histograms), as a hand-instrumented agent would.
- ``kit-telemetry``: the full pipeline (spans, aggregation into turn/run totals, pricing,
  Prometheus metrics, one sync extension handler registered for every event type).

Every variant exports to a discarding exporter behind a ``BatchSpanProcessor``.

Run: ``.venv/bin/python benchmarks/bench_overhead.py [--runs 300] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

import kit_telemetry as kt

TOOLS_PER_TURN = (2, 2, 1)


class DiscardExporter(SpanExporter):
    """Accepts and drops every span."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


class Variant(NamedTuple):
    """One way of instrumenting the benchmark's agent run."""

    run: Callable[[], None]
    close: Callable[[], None]


def _provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DiscardExporter(), max_queue_size=65536))
    return provider


def raw_run_factory(with_metrics: bool, provider: TracerProvider | None = None) -> Variant:
    provider = provider or _provider()
    tracer = provider.get_tracer("bench")
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = meter_provider.get_meter("bench")
    token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    llm_calls = meter.create_counter("kit.llm.calls")
    tokens = meter.create_counter("kit.llm.tokens")
    cost = meter.create_counter("kit.llm.cost_usd")
    tool_calls = meter.create_counter("kit.tool.calls")
    tool_duration = meter.create_histogram("kit.tool.duration", unit="s")
    runs = meter.create_counter("kit.agent.runs")
    run_duration = meter.create_histogram("kit.agent.run.duration", unit="s")
    run_cost = meter.create_histogram("kit.agent.run.cost_usd")
    agent_duration = meter.create_histogram("gen_ai.invoke_agent.duration", unit="s")
    execute_tool_duration = meter.create_histogram("gen_ai.execute_tool.duration", unit="s")

    def one_run() -> None:
        t0 = time.perf_counter()
        start_ns = time.time_ns()
        total_cost = 0.0
        input_tokens = output_tokens = cache_read_tokens = llm_calls_made = 0
        tool_names: list[str] = []
        with tracer.start_as_current_span(
            "invoke_agent coder",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "coder",
                "gen_ai.conversation.id": "s-1",
            },
        ) as run:
            run.add_event("kit.user_input", {})
            for index, n_tools in enumerate(TOOLS_PER_TURN):
                with tracer.start_as_current_span(
                    f"turn {index}",
                    attributes={"kit.turn.index": index, "gen_ai.conversation.id": "s-1"},
                ):
                    c0 = time.perf_counter()
                    with tracer.start_as_current_span(
                        "chat claude-sonnet-4-5",
                        kind=SpanKind.CLIENT,
                        attributes={
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": "anthropic",
                            "gen_ai.request.model": "claude-sonnet-4-5",
                            "gen_ai.request.max_tokens": 1024,
                            "gen_ai.conversation.id": "s-1",
                        },
                    ) as chat:
                        call_cost = (1200 * 3 + 4000 * 0.3 + 310 * 15) / 1e6
                        chat.set_attributes(
                            {
                                "gen_ai.usage.input_tokens": 5200,
                                "gen_ai.usage.output_tokens": 310,
                                "gen_ai.usage.cache_read.input_tokens": 4000,
                                "gen_ai.usage.cache_creation.input_tokens": 0,
                                "gen_ai.usage.reasoning.output_tokens": 0,
                                "gen_ai.response.id": "msg_01",
                                "gen_ai.response.finish_reasons": ("tool_use",),
                                "kit.llm.outcome": "ok",
                                "kit.usage.cost_usd": call_cost,
                            }
                        )
                    if with_metrics:
                        labels = {
                            "gen_ai.operation.name": "chat",
                            "gen_ai.provider.name": "anthropic",
                            "gen_ai.request.model": "claude-sonnet-4-5",
                        }
                        token_usage.record(5200, {**labels, "gen_ai.token.type": "input"})
                        token_usage.record(310, {**labels, "gen_ai.token.type": "output"})
                        duration.record(time.perf_counter() - c0, labels)
                        model = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
                        llm_calls.add(1, {**model, "outcome": "ok"})
                        for kind, n in (
                            ("input", 1200),
                            ("cache_read", 4000),
                            ("cache_write", 0),
                            ("output", 310),
                        ):
                            tokens.add(n, {**model, "token_type": kind})
                        cost.add(call_cost, model)
                    total_cost += call_cost
                    input_tokens += 1200
                    output_tokens += 310
                    cache_read_tokens += 4000
                    llm_calls_made += 1
                    for i in range(n_tools):
                        s0 = time.perf_counter()
                        with tracer.start_as_current_span(
                            "execute_tool bash",
                            attributes={
                                "gen_ai.operation.name": "execute_tool",
                                "gen_ai.tool.name": "bash",
                                "gen_ai.tool.call.id": f"toolu_{index}{i}",
                                "gen_ai.conversation.id": "s-1",
                            },
                        ):
                            tool_names.append("bash")
                        if with_metrics:
                            tool_calls.add(1, {"tool": "bash", "outcome": "ok"})
                            elapsed = time.perf_counter() - s0
                            tool_duration.record(elapsed, {"tool": "bash"})
                            execute_tool_duration.record(
                                elapsed,
                                {
                                    "gen_ai.operation.name": "execute_tool",
                                    "gen_ai.tool.name": "bash",
                                },
                            )
            run.set_attributes(
                {
                    "kit.run.llm_call_count": llm_calls_made,
                    "kit.run.tool_call_count": len(tool_names),
                    "kit.run.tool_names": tuple(tool_names),
                    "kit.run.input_tokens": input_tokens,
                    "kit.run.output_tokens": output_tokens,
                    "kit.run.cache_read_tokens": cache_read_tokens,
                    "kit.run.cache_write_tokens": 0,
                    "kit.run.reasoning_tokens": 0,
                    "kit.run.cost_usd": total_cost,
                    "kit.run.unpriced_call_count": 0,
                    "kit.run.cost_complete": True,
                    "kit.run.turn_count": len(TOOLS_PER_TURN),
                    "kit.run.duration_ms": (time.time_ns() - start_ns) / 1e6,
                    "kit.run.id": format(run.get_span_context().trace_id, "032x"),
                    "kit.run.stop_reason": "tool_use",
                    "gen_ai.provider.name": "anthropic",  # the run's, from its calls
                }
            )
        if with_metrics:
            runs.add(1, {"agent": "coder", "stop_reason": "end_turn"})
            run_duration.record(time.perf_counter() - t0, {"agent": "coder"})
            run_cost.record(total_cost, {"agent": "coder"})
            agent_duration.record(
                time.perf_counter() - t0,
                {
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.provider.name": "anthropic",
                    "gen_ai.agent.name": "coder",
                },
            )

    def close() -> None:
        provider.shutdown()
        meter_provider.shutdown()

    return Variant(one_run, close)


def agent_run(session: kt.Session) -> None:
    """The benchmark's agent run through kit-telemetry: 3 turns, 3 LLM calls, 5 tool calls."""
    with session.run("fix the failing test", agent_name="coder") as run:
        for index, n_tools in enumerate(TOOLS_PER_TURN):
            with run.turn() as turn:
                with turn.llm_call("anthropic", "claude-sonnet-4-5", max_tokens=1024) as call:
                    call.record_usage(
                        input_tokens=1200,
                        output_tokens=310,
                        cache_read_tokens=4000,
                        finish_reason="tool_use",
                        response_id="msg_01",
                    )
                for i in range(n_tools):
                    with turn.tool_call("bash", call_id=f"toolu_{index}{i}"):
                        pass


def handle_every_event(
    tel: kt.Telemetry, handler: Callable[[kt.Event, kt.ExtensionContext], object]
) -> None:
    """Register ``handler`` for every event type, as an extension named "bench" would."""

    def setup(api: kt.ExtensionAPI) -> None:
        for event_type in kt.EventType:
            api.on(event_type, handler)

    tel.extension_processor.load_setup("bench", setup)


def kit_run_factory(provider: TracerProvider | None = None) -> Variant:
    tel = kt.Telemetry(
        tracer_provider=provider or _provider(), exporters=(), prometheus=CollectorRegistry()
    )
    seen = [0]

    def handler(event: kt.Event, ctx: kt.ExtensionContext) -> None:
        seen[0] += 1

    handle_every_event(tel, handler)
    session = tel.session("s-1")
    session.start()

    def one_run() -> None:
        agent_run(session)

    def close() -> None:
        session.end()
        tel.shutdown()
        assert seen[0] > 0

    return Variant(one_run, close)


CLOCKS = {"thread": time.thread_time, "process": time.process_time, "wall": time.perf_counter}


def measure(
    fn: Callable[[], None],
    runs: int,
    clock: Callable[[], float] = time.thread_time,
) -> float:
    """Microseconds per run over one batch, on the chosen clock.

    ``thread`` (the default) is the CPU time of the agent's thread: what instrumentation
    costs the agent. Export runs on a background thread in every variant alike, and wall
    time would also charge a variant with whatever else the shared machine ran meanwhile.
    ``process`` is the CPU time of every thread of the process: it also counts the work
    done off the agent's thread (export, in every variant). ``wall`` is the elapsed time,
    for a quiet machine.
    """
    gc.collect()
    start = clock()
    for _ in range(runs):
        fn()
    return (clock() - start) / runs * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300, help="runs per batch")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved batches per variant")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="thread", help="what to time")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    variants = {
        "raw spans": raw_run_factory(False),
        "raw spans + metrics": raw_run_factory(True),
        "kit-telemetry": kit_run_factory(),
    }
    for fn, _ in variants.values():  # warm-up: caches, first price lookup, children
        measure(fn, 200)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, variant in variants.items():
            samples[name].append(measure(variant.run, args.runs, clock))
    for _, close in variants.values():
        close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(
        f"per agent run (1 run, 3 turns, 3 LLM calls, 5 tool calls); {args.clock} clock; "
        f"median of {args.rounds} x {args.runs}"
    )
    for name, value in medians.items():
        print(f"  {name:<36} {value:8.1f} us")
    # Ratios per round (each round runs every variant back to back), then their median:
    # slow drifts of the shared machine cancel out within a round.
    kit = samples["kit-telemetry"]
    # The goal is the same telemetry as by hand (spans and metrics) at no more cost; the
    # ratio to the spans alone says what the rest (totals, events, pricing) costs.
    for baseline, goal in (("raw spans + metrics", "  (goal <= 1.0)"), ("raw spans", "")):
        ratios = [k / b for k, b in zip(kit, samples[baseline], strict=True)]
        print(f"  ratio kit / {baseline:<24} {statistics.median(ratios):.2f}{goal}")


if __name__ == "__main__":
    main()
