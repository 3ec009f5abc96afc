"""Where kit-telemetry's overhead goes: the benchmark's agent run, one layer at a time.

The run of ``bench_overhead.py`` (1 run, 3 turns, 3 LLM calls, 5 tool calls), measured
with kit-telemetry's processors added to the provider one by one, against the same spans
made by hand. Interleaved rounds, medians of the per-round ratios, CPU time of the
agent's thread:

- ``api only``: kit-telemetry's spans, none of its processors;
- ``+ aggregator``: totals and the events the metrics need (no handler, no metrics);
- ``+ extension runtime``: the handler runtime, with no handler registered;
- ``+ metrics``: finished calls queued for the Prometheus series;
- ``+ one handler``: one sync handler on every event type (the full pipeline).

Run: ``.venv/bin/python benchmarks/bench_breakdown.py [--runs 200] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable

from bench_overhead import _provider, agent_run, handle_every_event, measure, raw_run_factory
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.tracing import start_attributes_can_wait

LAYERS = ("api only", "+ aggregator", "+ extension runtime", "+ metrics", "+ one handler")


def kit_layer(depth: int) -> Callable[[], None]:
    """The benchmark's run with the first ``depth`` layers of ``LAYERS`` (1 = api only)."""
    provider = _provider()
    tel = kt.Telemetry(tracer_provider=provider, exporters=(), prometheus=CollectorRegistry())
    if depth < 4:
        tel.aggregator._metrics = None
    if depth >= 5:
        handle_every_event(tel, lambda event, ctx: None)
    dropped: list[object] = []
    if depth < 2:
        dropped.append(tel.aggregator)
    if depth < 3:
        dropped.append(tel._extensions)
    # The SDK has no way to remove a processor: rebuild its (private) tuple without ours.
    multi = provider._active_span_processor
    multi._span_processors = tuple(p for p in multi._span_processors if p not in dropped)
    # Without the aggregator, spans must start with their attributes again.
    tel._late_start_attributes = start_attributes_can_wait(provider, tel.aggregator)
    session = tel.session("s-1")
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
