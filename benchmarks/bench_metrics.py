"""ns per ``KitMetrics.record_llm_call``, against raw prometheus-client and the OTel metrics SDK.

Run: ``.venv/bin/python benchmarks/bench_metrics.py [--records N] [--runs R]``

Every variant makes the same updates for one priced LLM call with cached input (the
calls counter, four token counters, the reasoning and cost counters, the two token-usage
observations and the duration observation), so the figures compare like with like:

- ``raw prometheus-client``: the same updates written by hand through pre-bound children's
  public ``inc``/``observe``: the floor for any recorder on prometheus-client (the
  baseline of the ratios).
- ``kit (prometheus)``: ``KitMetrics.record_llm_call`` as the aggregator calls it, on the
  caller's thread, no meter provider: the floor plus the recorder's own work (the cache
  lookup of the bound series, the checks that keep a bad call out whole).
- ``otel sdk``: the same updates through OpenTelemetry SDK instruments with pre-built
  attribute dicts (what recording by hand through OpenTelemetry would cost).
- ``kit (prometheus + otel)``: ``KitMetrics`` with a meter provider, both paths at once.

The variants take turns within each run (the machine's noise falls on all of them alike);
reports the median over ``R`` runs of ``N`` records each. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from importlib.metadata import version

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, Counter, Histogram

from kit_telemetry.events import LLMUsageEvent
from kit_telemetry.metrics import (
    GEN_AI_DURATION_BUCKETS,
    GEN_AI_TOKEN_BUCKETS,
    KitMetrics,
)

# calls, 4 token kinds, reasoning, cost, 2 token-usage observations, duration.
UPDATES_PER_RECORD = 10

EVENT = LLMUsageEvent(
    session_id="s-1",
    run_id="r-1",
    timestamp_ns=1,
    provider="anthropic",
    model="claude-sonnet-4-5",
    input_tokens=1200,
    output_tokens=310,
    cache_read_tokens=4000,
    cache_write_tokens=100,
    reasoning_tokens=50,
    cost_usd=0.0123,
    duration_ms=1500.0,
)


def ns_per_record(record: Callable[[], None], records: int) -> float:
    """ns per call of ``record`` over one run of ``records`` calls."""
    start = time.perf_counter_ns()
    for _ in range(records):
        record()
    return (time.perf_counter_ns() - start) / records


def time_per_record(
    variants: dict[str, Callable[[], None]], records: int, runs: int
) -> dict[str, float]:
    """Median ns per record of each variant, the variants taking turns within each run."""
    for record in variants.values():
        for _ in range(min(records, 1000)):
            record()  # warm up: bind children, fill caches
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, record in variants.items():
            samples[name].append(ns_per_record(record, records))
    return {name: statistics.median(values) for name, values in samples.items()}


def kit_prometheus() -> Callable[[], None]:
    metrics = KitMetrics(registry=CollectorRegistry())
    return lambda: metrics.record_llm_call(EVENT)


def kit_both() -> tuple[Callable[[], None], MeterProvider]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    metrics = KitMetrics(registry=CollectorRegistry(), meter_provider=provider)
    return (lambda: metrics.record_llm_call(EVENT)), provider


def raw_prometheus() -> Callable[[], None]:
    registry = CollectorRegistry()
    pm = ["provider", "model"]
    calls = Counter("calls_total", "", [*pm, "outcome"], registry=registry)
    tokens = Counter("tokens_total", "", [*pm, "token_type"], registry=registry)
    reasoning = Counter("reasoning_total", "", pm, registry=registry)
    cost = Counter("cost_total", "", pm, registry=registry)
    genai = ["op", "provider", "model"]
    usage = Histogram(
        "usage", "", [*genai, "type"], registry=registry, buckets=GEN_AI_TOKEN_BUCKETS
    )
    duration = Histogram(
        "duration", "", [*genai, "error_type"], registry=registry, buckets=GEN_AI_DURATION_BUCKETS
    )
    p, m = EVENT.provider, EVENT.model
    calls_inc = calls.labels(p, m, "ok").inc
    input_inc = tokens.labels(p, m, "input").inc
    cache_read_inc = tokens.labels(p, m, "cache_read").inc
    cache_write_inc = tokens.labels(p, m, "cache_write").inc
    output_inc = tokens.labels(p, m, "output").inc
    reasoning_inc = reasoning.labels(p, m).inc
    cost_inc = cost.labels(p, m).inc
    usage_in = usage.labels("chat", p, m, "input").observe
    usage_out = usage.labels("chat", p, m, "output").observe
    duration_observe = duration.labels("chat", p, m, "").observe

    def record() -> None:
        e = EVENT
        calls_inc(1)
        input_inc(e.input_tokens)
        cache_read_inc(e.cache_read_tokens)
        cache_write_inc(e.cache_write_tokens)
        output_inc(e.output_tokens)
        reasoning_inc(e.reasoning_tokens)
        usage_in(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens)
        usage_out(e.output_tokens)
        cost_inc(e.cost_usd or 0.0)
        duration_observe(e.duration_ms / 1000.0)

    return record


def otel_sdk() -> tuple[Callable[[], None], MeterProvider]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    meter = provider.get_meter("bench")
    calls = meter.create_counter("kit.llm.calls", "{call}")
    tokens = meter.create_counter("kit.llm.tokens", "{token}")
    reasoning = meter.create_counter("kit.llm.reasoning_tokens", "{token}")
    cost = meter.create_counter("kit.llm.cost_usd", "{USD}")
    usage = meter.create_histogram(
        "gen_ai.client.token.usage",
        "{token}",
        explicit_bucket_boundaries_advisory=GEN_AI_TOKEN_BUCKETS,
    )
    duration = meter.create_histogram(
        "gen_ai.client.operation.duration",
        "s",
        explicit_bucket_boundaries_advisory=GEN_AI_DURATION_BUCKETS,
    )
    pm = {"provider": EVENT.provider, "model": EVENT.model}
    calls_attrs = {**pm, "outcome": "ok"}
    token_attrs = {kind: {**pm, "token_type": kind} for kind in
                   ("input", "cache_read", "cache_write", "output")}  # fmt: skip
    genai = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": EVENT.provider,
        "gen_ai.request.model": EVENT.model,
    }
    usage_in_attrs = {**genai, "gen_ai.token.type": "input"}
    usage_out_attrs = {**genai, "gen_ai.token.type": "output"}

    def record() -> None:
        e = EVENT
        calls.add(1, calls_attrs)
        tokens.add(e.input_tokens, token_attrs["input"])
        tokens.add(e.cache_read_tokens, token_attrs["cache_read"])
        tokens.add(e.cache_write_tokens, token_attrs["cache_write"])
        tokens.add(e.output_tokens, token_attrs["output"])
        reasoning.add(e.reasoning_tokens, pm)
        usage.record(e.input_tokens + e.cache_read_tokens + e.cache_write_tokens, usage_in_attrs)
        usage.record(e.output_tokens, usage_out_attrs)
        cost.add(e.cost_usd or 0.0, pm)
        duration.record(e.duration_ms / 1000.0, genai)

    return record, provider


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000, help="records per run")
    parser.add_argument("--runs", type=int, default=7, help="runs; the median is reported")
    args = parser.parse_args(argv)

    otel_record, otel_provider = otel_sdk()
    both_record, both_provider = kit_both()
    variants = {
        "raw prometheus-client": raw_prometheus(),
        "kit (prometheus)": kit_prometheus(),
        "otel sdk": otel_record,
        "kit (prometheus + otel)": both_record,
    }
    results = time_per_record(variants, args.records, args.runs)
    otel_provider.shutdown()
    both_provider.shutdown()

    baseline = results["raw prometheus-client"]
    out = sys.stdout
    out.write(
        f"record_llm_call, {args.records} records x {args.runs} runs (median), "
        f"Python {sys.version.split()[0]}, prometheus-client {version('prometheus-client')}\n"
    )
    out.write(f"{'variant':<26} {'ns/record':>10} {'ns/update':>10} {'x raw prometheus':>17}\n")
    for name, ns in results.items():
        per_update = ns / UPDATES_PER_RECORD
        out.write(f"{name:<26} {ns:>10,.0f} {per_update:>10,.0f} {ns / baseline:>16.2f}x\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
