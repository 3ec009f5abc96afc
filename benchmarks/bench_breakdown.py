"""Where kit-telemetry's overhead goes: the benchmark's agent run, one layer at a time.

The run of ``bench_overhead.py`` (1 run, 3 turns, 3 LLM calls, 5 tool calls), measured
with kit-telemetry's processors added to the provider one by one, against the same spans
made by hand. Interleaved rounds, medians of the per-round ratios, CPU time of the
agent's thread:

- ``api only``: kit-telemetry's spans, none of its processors;
- ``+ aggregator``: totals and the events the metrics need (no handler, no metrics);
- ``+ extension runtime``: the handler runtime, with no handler registered;
- ``+ metrics``: finished calls recorded into the Prometheus series;
- ``+ one handler``: one sync handler on every event type (the full pipeline).

Run: ``.venv/bin/python benchmarks/bench_breakdown.py [--runs 200] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

from bench_overhead import _provider, agent_run, measure, raw_run_factory
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry._errors import ErrorPolicy
from kit_telemetry._runtime import Runtime
from kit_telemetry.aggregation import UsageAggregator
from kit_telemetry.extensions import ExtensionSpanProcessor
from kit_telemetry.metrics import KitMetrics
from kit_telemetry.pricing import PriceTable
from kit_telemetry.state.registry import StateRegistry

LAYERS = ("api only", "+ aggregator", "+ extension runtime", "+ metrics", "+ one handler")


def kit_layer(depth: int) -> Callable[[], None]:
    """The benchmark's run with the first ``depth`` layers of ``LAYERS`` (1 = api only).

    Built from the same parts ``Telemetry`` wires, adding only the processors of the layers.
    """
    provider = _provider()
    prices = PriceTable()
    metrics = KitMetrics(registry=CollectorRegistry()) if depth >= 4 else None
    aggregator = UsageAggregator(pricer=prices, metrics=metrics)
    extensions = ExtensionSpanProcessor(aggregator)
    if depth >= 2:
        provider.add_span_processor(aggregator)
    if depth < 3:
        aggregator.set_event_sink(None)  # no runtime to hand the events to
    else:
        provider.add_span_processor(extensions)
    if depth >= 5:

        def setup(api: kt.ExtensionAPI) -> None:
            for event_type in kt.EventType:
                api.on(event_type, lambda event, ctx: None)

        extensions.load_setup("bench", setup)
    runtime = Runtime(
        tracer=provider.get_tracer("kit_telemetry"),
        errors=ErrorPolicy(),
        prices=prices,
        aggregator=aggregator,
        states=StateRegistry(),
    )
    session = kt.Session(runtime, "s-1")
    session.start()
    return lambda: agent_run(session)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=200, help="runs per batch")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved batches per variant")
    args = parser.parse_args()
    variants = {"raw spans": raw_run_factory(False).run}
    for depth, name in enumerate(LAYERS, start=1):
        variants[name] = kit_layer(depth)
    for fn in variants.values():  # warm-up
        measure(fn, 200)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            samples[name].append(measure(fn, args.runs))
    raw = samples["raw spans"]
    print(f"per agent run; thread clock; median of {args.rounds} x {args.runs}")
    for name, values in samples.items():
        ratio = statistics.median(v / r for v, r in zip(values, raw, strict=True))
        print(f"  {name:<22} {statistics.median(values):8.1f} us   {ratio:.2f} x raw spans")


if __name__ == "__main__":
    main()
