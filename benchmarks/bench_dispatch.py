"""Cost of extension handler dispatch, per event, with 0, 1 and 5 sync handlers per event type.

Two measurements, each against a baseline taken in the same run, interleaved over several
rounds; medians reported, in CPU microseconds of the calling thread:

- ``dispatch``: ``ExtensionSpanProcessor.emit(event)`` over a run's worth of prebuilt events
  (22 events: agent_start, user_input, 3 turns with an LLM call and 5 tool calls in all,
  agent_end), against calling the same handlers directly in a loop (what the handlers
  themselves cost; the gap is the runtime's dispatch: lookup, a context per call, the
  error guard).
- ``full run``: one agent run through the instrumentation API (spans, aggregation,
  pricing, Prometheus metrics, no exporter), with the handlers registered, against the
  same run with none, measured right before it. The extra per event includes building the
  events themselves: with no handler the aggregator skips the optional ones (starts, turn
  ends), so the first handler pays for them and each further one only for its call.

- ``decision point``: one tool call through the API (``with turn.tool_call(...)`` and
  ``set_result``: two decision points, ``tool_call`` and ``tool_result``) with 0, 1 and 5
  handlers per decision event that return ``None`` (no opinion), against the same tool
  call with no extension loaded, measured right before it; and ``decide(event)`` itself
  against calling the same handlers directly.

The handlers are the cheapest real ones: they count the events they get. Extensions are
loaded from a real file, as users load them.

Run: ``.venv/bin/python benchmarks/bench_dispatch.py [--rounds 9] [--runs 300]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_overhead import TOOLS_PER_TURN, agent_run  # the same run, measured alike
from prometheus_client import CollectorRegistry

import kit_telemetry as kt

HANDLER_COUNTS = (0, 1, 5)

EXTENSION = """
import kit_telemetry as kt

COUNT = [0]

def setup(api):
    for event_type in kt.EventType:
        for _ in range({handlers}):
            def handler(event, ctx):
                COUNT[0] += 1
            api.on(event_type, handler)
"""


def write_extension(folder: Path, handlers: int) -> Path:
    path = folder / f"bench_handlers_{handlers}.py"
    path.write_text(EXTENSION.format(handlers=handlers))
    return path


def run_events() -> list[kt.Event]:
    """The events of one run, as the aggregator delivers them."""
    common: dict[str, Any] = {"session_id": "s-1", "timestamp_ns": time.time_ns(), "run_id": "r-1"}
    events: list[kt.Event] = [
        kt.AgentStartEvent(agent_name="coder", prompt="fix it", **common),
        kt.UserInputEvent(text="fix it", **common),
    ]
    for index, n_tools in enumerate(TOOLS_PER_TURN):
        events.append(kt.TurnStartEvent(turn_index=index, **common))
        events.append(
            kt.LLMUsageEvent(
                provider="anthropic",
                model="claude-sonnet-4-5",
                step=index,
                input_tokens=1200,
                output_tokens=310,
                cache_read_tokens=4000,
                cost_usd=0.0097,
                **common,
            )
        )
        for i in range(n_tools):
            events.append(kt.ToolCallEvent(tool_name="bash", call_id=f"t{index}{i}", **common))
            events.append(kt.ToolResultEvent(tool_name="bash", call_id=f"t{index}{i}", **common))
        events.append(kt.TurnEndEvent(turn_index=index, llm_call_count=1, **common))
    events.append(kt.AgentEndEvent(agent_name="coder", llm_call_count=3, **common))
    return events


def telemetry(extension: Path | None) -> kt.Telemetry:
    tel = kt.Telemetry(exporters=(), prometheus=CollectorRegistry())
    if extension is not None:
        tel.load_extension(extension)
    return tel


def dispatch_factory(extension: Path) -> tuple[Callable[[], None], Callable[[], None], int]:
    """emit() every event of a run; returns (one batch, the direct-call baseline, events)."""
    tel = telemetry(extension)
    runtime = tel.extension_processor
    events = run_events()
    handlers = [
        (handler, event_type)
        for loaded in tel.extensions
        for event_type, handler in loaded.handlers
    ]
    by_type: dict[kt.EventType, list[Callable[..., object]]] = {}
    for handler, event_type in handlers:
        by_type.setdefault(event_type, []).append(handler)
    ctx = kt.ExtensionContext.attached(runtime, "bench", "s-1", ".", None)

    def emit_all() -> None:
        for event in events:
            runtime.emit(event)

    def call_directly() -> None:
        for event in events:
            for handler in by_type.get(event.type, ()):
                handler(event, ctx)

    return emit_all, call_directly, len(events)


def run_factory(extension: Path | None) -> tuple[Callable[[], None], Callable[[], None]]:
    """One agent run through the API (3 turns, 3 LLM calls, 5 tool calls)."""
    tel = telemetry(extension)
    session = tel.session("s-1")
    session.start()

    def one_run() -> None:
        agent_run(session)

    def close() -> None:
        session.end()
        tel.shutdown()

    return one_run, close


def measure(fn: Callable[[], None], repeat: int) -> float:
    """CPU microseconds of this thread per call of ``fn``, over one batch."""
    gc.collect()
    start = time.thread_time()
    for _ in range(repeat):
        fn()
    return (time.thread_time() - start) / repeat * 1e6


def decision_factory(
    extension: Path | None,
) -> tuple[Callable[[], None], Callable[[], None], Callable[[], None], Callable[[], None]]:
    """(one tool call through the API, decide() once, the handlers called directly, close)."""
    tel = telemetry(extension)
    session = tel.session("s-1")
    session.start()
    run = session.run("go")
    run.start()
    turn = run.turn()
    turn.start()
    processor = tel.extension_processor
    event = kt.ToolCallEvent(session_id="s-1", timestamp_ns=1, run_id="r-1", tool_name="bash")
    handlers = [
        handler
        for loaded in tel.extensions
        for event_type, handler in loaded.handlers
        if event_type is kt.EventType.TOOL_CALL
    ]
    ctx = kt.ExtensionContext.attached(processor, "bench", "s-1", ".", None)

    def tool_call() -> None:
        with turn.tool_call("bash", call_id="t") as tool:
            tool.set_result("ok")

    def decide() -> None:
        processor.decide(event)

    def call_directly() -> None:
        for handler in handlers:
            handler(event, ctx)

    def close() -> None:
        turn.end()
        run.end()
        session.end()
        tel.shutdown()

    return tool_call, decide, call_directly, close


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=9, help="interleaved batches (median)")
    parser.add_argument("--runs", type=int, default=300, help="agent runs per batch")
    parser.add_argument("--emits", type=int, default=1000, help="runs' worth of emit() per batch")
    parser.add_argument("--tools", type=int, default=3000, help="tool calls per batch")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        files = {n: write_extension(Path(folder), n) for n in HANDLER_COUNTS}
        dispatch = {n: dispatch_factory(files[n]) for n in HANDLER_COUNTS}
        runs = {n: run_factory(files[n] if n else None) for n in HANDLER_COUNTS}
        events_per_run = dispatch[0][2]

        emit_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        direct_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        run_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        for n in HANDLER_COUNTS:  # warm-up: imports, caches, the first price lookup
            measure(dispatch[n][0], 50)
            measure(runs[n][0], 50)
        extra_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        for _ in range(args.rounds):
            for n in HANDLER_COUNTS:
                emit_all, call_directly, _ = dispatch[n]
                emit_us[n].append(measure(emit_all, args.emits) / events_per_run)
                direct_us[n].append(measure(call_directly, args.emits) / events_per_run)
            # Paired with a baseline batch right before it: the difference of two batches
            # measured seconds apart is steadier than the difference of two medians.
            for n in HANDLER_COUNTS:
                baseline = measure(runs[0][0], args.runs)
                subject = measure(runs[n][0], args.runs)
                run_us[n].append(subject)
                extra_us[n].append((subject - baseline) / events_per_run)
        for _, close in runs.values():
            close()

        decisions = {n: decision_factory(files[n] if n else None) for n in HANDLER_COUNTS}
        tool_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        tool_ratio: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        decide_us: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        decide_direct: dict[int, list[float]] = {n: [] for n in HANDLER_COUNTS}
        for n in HANDLER_COUNTS:
            measure(decisions[n][0], 200)
        for _ in range(args.rounds):
            for n in HANDLER_COUNTS:
                tool_call, decide, call_directly, _ = decisions[n]
                baseline = measure(decisions[0][0], args.tools)
                subject = measure(tool_call, args.tools)
                tool_us[n].append(subject)
                tool_ratio[n].append(subject / baseline)
                decide_us[n].append(measure(decide, args.tools))
                decide_direct[n].append(measure(call_directly, args.tools))
        for *_, close in decisions.values():
            close()

    med = {n: statistics.median(v) for n, v in emit_us.items()}
    direct = {n: statistics.median(v) for n, v in direct_us.items()}
    full = {n: statistics.median(v) for n, v in run_us.items()}
    print(
        f"handler dispatch: CPU µs, median of {args.rounds} rounds; "
        f"{events_per_run} events per run; Python {sys.version.split()[0]}"
    )
    print()
    header = (
        f"{'handlers/type':>13}  {'emit µs/event':>13}  {'direct calls':>12}  "
        f"{'dispatch/direct':>15}  {'full run µs':>11}  {'vs 0':>5}  {'extra µs/event':>14}"
    )
    print(header)
    print("-" * len(header))
    for n in HANDLER_COUNTS:
        ratio = f"{med[n] / direct[n]:.2f}x" if n else "-"
        extra = statistics.median(extra_us[n])
        print(
            f"{n:>13}  {med[n]:>13.2f}  {direct[n]:>12.2f}  {ratio:>15}  "
            f"{full[n]:>11.1f}  {full[n] / full[0]:>4.2f}x  {extra:>14.2f}"
        )
    print()
    print("emit µs/event: ExtensionSpanProcessor.emit() per event, handlers included;")
    print("direct calls: the same handlers called in a plain loop (the baseline);")
    print("full run: one agent run through the API; extra µs/event: over a run with no")
    print("handlers measured right before it (median of the paired differences).")
    print()
    header = (
        f"{'handlers/event':>14}  {'tool call µs':>12}  {'vs none':>7}  "
        f"{'decide() µs':>11}  {'direct calls µs':>15}"
    )
    print("decision points: one tool call (tool_call + tool_result), handlers returning None")
    print(header)
    print("-" * len(header))
    for n in HANDLER_COUNTS:
        print(
            f"{n:>14}  {statistics.median(tool_us[n]):>12.2f}  "
            f"{statistics.median(tool_ratio[n]):>6.2f}x  "
            f"{statistics.median(decide_us[n]):>11.2f}  "
            f"{statistics.median(decide_direct[n]):>15.2f}"
        )
    print()
    print("tool call: with turn.tool_call(...) + set_result, through the whole pipeline;")
    print("vs none: over the same call with no extension, measured right before it (ratio,")
    print("median of rounds); decide(): one tool_call decision point alone; direct calls:")
    print("the same handlers called in a plain loop.")


if __name__ == "__main__":
    main()
