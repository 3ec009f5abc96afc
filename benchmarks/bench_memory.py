"""Memory over 1,000,000 LLM calls across 10,000 sessions: bounded, not kept per run.

Run: ``.venv/bin/python benchmarks/bench_memory.py [--calls 1000000] [--sessions 10000]``

The work goes through kit-telemetry's public API, the way an agent server would: sessions
are opened and closed one after another, each holds runs of ``--calls-per-run`` turns (one
LLM call with usage each, and a tool call every other turn), with a few models, priced
from the bundled table. Two configurations, each in a fresh process so that neither
inherits the other's heap:

- ``none``: ``exporters=()`` (aggregation, pricing, metrics only);
- ``discard``: the same plus an exporter that accepts and drops every span (the export
  pipeline's queue and worker thread are in play).

At ``--checkpoints`` points it prints the resident set size (``VmRSS`` from
/proc/self/status, else ``ru_maxrss``), the Python heap traced by ``tracemalloc`` (with
``--tracemalloc``: slower, exact), the spans and sessions the aggregator still tracks and
the payloads still registered. The baseline is the first checkpoint, taken in the same run
after warm-up (lazy imports, price cache, metric series bound): memory is bounded when
later checkpoints stay flat against it, whatever the number of finished runs and sessions.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

import kit_telemetry as kt
from kit_telemetry.tracing import PAYLOADS

MODELS = (("anthropic", "claude-sonnet-4-5"), ("openai", "gpt-4o"), ("openai", "o4-mini"))
CONFIGS = ("none", "discard")
MIB = 1024 * 1024


class DiscardingExporter(SpanExporter):
    """Accepts every span and keeps nothing but a count."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def rss_bytes() -> tuple[int, int]:
    """(current, peak) resident set size of this process."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return peak, peak


def one_session(tel: kt.Telemetry, index: int, runs: int, calls_per_run: int) -> int:
    """One session of ``runs`` runs; returns the LLM calls made."""
    calls = 0
    with tel.session(f"session-{index}") as session:
        for r in range(runs):
            provider, model = MODELS[(index + r) % len(MODELS)]
            with session.run("do the task", agent_name=f"agent-{r % 3}") as run:
                for t in range(calls_per_run):
                    with run.turn() as turn:
                        with turn.llm_call(provider, model) as call:
                            call.record_usage(
                                input_tokens=400 + t,
                                output_tokens=120,
                                cache_read_tokens=2000,
                                cache_write_tokens=0 if t else 300,
                                reasoning_tokens=40,
                                finish_reason="end_turn" if t == calls_per_run - 1 else "tool_use",
                                response_id=f"resp-{index}-{r}-{t}",
                            )
                        calls += 1
                        if t % 2 == 0:
                            with turn.tool_call("bash", call_id=f"call-{t}") as tool:
                                tool.set_result("ok")
                run.set_response("done")
    return calls


def measure(config: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole workload in this process and print one row per checkpoint."""
    exporter = DiscardingExporter() if config == "discard" else None
    tel = kt.Telemetry(service_name="bench-memory", exporters=(exporter,) if exporter else ())
    if args.tracemalloc:
        tracemalloc.start()
    calls_per_session = args.calls // args.sessions
    runs = max(calls_per_session // args.calls_per_run, 1)
    total_sessions = args.sessions
    step = max(total_sessions // args.checkpoints, 1)
    rows: list[dict[str, Any]] = []
    header = (
        f"{'calls':>9} {'sessions':>8} {'s':>7} {'calls/s':>8} {'RSS MiB':>8} "
        f"{'peak MiB':>8} {'heap MiB':>8} {'open':>5} {'payloads':>8}"
    )
    print(f"\n== config {config}: {args.calls:,} calls, {total_sessions:,} sessions, "
          f"{runs} runs x {args.calls_per_run} calls per session ==")  # fmt: skip
    print(header)
    calls = 0
    started = last_t = time.perf_counter()
    last_calls = 0
    # Warm-up checkpoint: one session is enough to import and bind everything lazily built.
    checkpoints = {1, *range(step, total_sessions + 1, step), total_sessions}
    for index in range(total_sessions):
        calls += one_session(tel, index, runs, args.calls_per_run)
        if index + 1 in checkpoints:
            gc.collect()
            now = time.perf_counter()
            rss, peak = rss_bytes()
            heap = tracemalloc.get_traced_memory()[0] if args.tracemalloc else None
            row = {
                "calls": calls,
                "sessions": index + 1,
                "elapsed_s": now - started,
                "rate": (calls - last_calls) / (now - last_t) if now > last_t else 0.0,
                "rss": rss,
                "peak": peak,
                "heap": heap,
                "open": tel.aggregator.open_span_count(),
                "payloads": len(PAYLOADS),
            }
            rows.append(row)
            last_t, last_calls = now, calls
            heap_text = f"{heap / MIB:8.1f}" if heap is not None else f"{'-':>8}"
            print(
                f"{calls:>9,} {index + 1:>8,} {row['elapsed_s']:7.1f} {row['rate']:8.0f} "
                f"{rss / MIB:8.1f} {peak / MIB:8.1f} {heap_text} {row['open']:>5} "
                f"{row['payloads']:>8}",
                flush=True,
            )
    tel.force_flush()
    tel.shutdown()
    elapsed = time.perf_counter() - started
    base = rows[1] if len(rows) > 2 else rows[0]  # after the first full interval
    last = rows[-1]
    result = {
        "config": config,
        "calls": calls,
        "sessions": total_sessions,
        "elapsed_s": elapsed,
        # After warm-up: the first session pays for lazy imports (the price data), which
        # under tracemalloc takes tens of seconds.
        "rate": (calls - rows[0]["calls"]) / (last["elapsed_s"] - rows[0]["elapsed_s"])
        if len(rows) > 1
        else calls / elapsed,
        "rss_base": base["rss"],
        "rss_end": last["rss"],
        "peak": last["peak"],
        "heap_base": base["heap"],
        "heap_end": last["heap"],
        "open_end": last["open"],
        "payloads_end": last["payloads"],
        "exported": exporter.exported if exporter else None,
        "base_calls": base["calls"],
    }
    growth = (last["rss"] - base["rss"]) / MIB
    print(
        f"RSS {base['rss'] / MIB:.1f} MiB at {base['calls']:,} calls -> {last['rss'] / MIB:.1f} MiB "
        f"at {calls:,} calls ({growth:+.1f} MiB, ratio {last['rss'] / base['rss']:.3f}); "
        f"{elapsed:.0f} s in all, {result['rate']:,.0f} calls/s after warm-up"
    )
    if exporter is not None:
        # Per run: the run span, a turn and a chat span per call, a tool span every other turn.
        per_run = 1 + 2 * args.calls_per_run + (args.calls_per_run + 1) // 2
        produced = total_sessions * (2 + runs * per_run)
        print(
            f"spans ended {produced:,}; exported (then discarded) {exporter.exported:,}; "
            f"dropped by the export queue {produced - exporter.exported:,}"
        )
    return result


def summary(results: list[dict[str, Any]]) -> None:
    print("\n== summary (baseline: the checkpoint after the first interval, same process) ==")
    print("(calls/s after warm-up; time s includes it)")
    print(
        f"{'config':<8} {'calls':>9} {'time s':>7} {'calls/s':>8} {'RSS base':>9} "
        f"{'RSS end':>8} {'end/base':>8} {'heap base':>9} {'heap end':>8} {'open':>5} "
        f"{'payloads':>8}"
    )
    for r in results:
        heap_base = f"{r['heap_base'] / MIB:9.1f}" if r["heap_base"] is not None else f"{'-':>9}"
        heap_end = f"{r['heap_end'] / MIB:8.1f}" if r["heap_end"] is not None else f"{'-':>8}"
        print(
            f"{r['config']:<8} {r['calls']:>9,} {r['elapsed_s']:7.0f} {r['rate']:8.0f} "
            f"{r['rss_base'] / MIB:9.1f} {r['rss_end'] / MIB:8.1f} "
            f"{r['rss_end'] / r['rss_base']:8.3f} {heap_base} {heap_end} {r['open_end']:>5} "
            f"{r['payloads_end']:>8}"
        )
    print("(MiB; 'open' = spans and sessions the aggregator still tracks; 'payloads' = span "
          "payloads still registered)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000, help="LLM calls in all")
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions they spread over")
    parser.add_argument("--calls-per-run", type=int, default=5, help="LLM calls (turns) per run")
    parser.add_argument("--checkpoints", type=int, default=10, help="measurements along the way")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace the Python heap")
    parser.add_argument("--config", choices=(*CONFIGS, "both"), default="both")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.calls < args.sessions or args.sessions < 1 or args.calls_per_run < 1:
        parser.error("need --calls >= --sessions >= 1 and --calls-per-run >= 1")
    if args.child:
        result = measure(args.config, args)
        print("RESULT " + json.dumps(result), flush=True)
        return 0
    configs = CONFIGS if args.config == "both" else (args.config,)
    results = []
    for config in configs:
        # A fresh interpreter per configuration: RSS never shrinks back, so a shared process
        # would show the first configuration's heap in the second one's figures.
        command = [
            sys.executable,
            os.path.abspath(__file__),
            *("--calls", str(args.calls), "--sessions", str(args.sessions)),
            *("--calls-per-run", str(args.calls_per_run), "--checkpoints", str(args.checkpoints)),
            *(("--tracemalloc",) if args.tracemalloc else ()),
            *("--config", config, "--child"),
        ]
        with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None
            for line in child.stdout:
                if line.startswith("RESULT "):
                    results.append(json.loads(line[len("RESULT ") :]))
                else:
                    print(line, end="", flush=True)
        if child.returncode != 0:
            print(f"config {config} failed with exit code {child.returncode}", file=sys.stderr)
            return child.returncode
    summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
