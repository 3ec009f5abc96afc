"""``kit-telemetry demo``: an instrumented agent against a built-in simulated model.

It prints one line per run and a closing summary, serves ``/metrics`` while it runs, and
writes its traces as OTLP/JSON lines to a local file (``kit-telemetry report`` reads it).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections import defaultdict
from typing import TYPE_CHECKING, Any, TextIO

from kit_telemetry.errors import ConfigError, KitTelemetryError

if TYPE_CHECKING:
    from ..demo.agent import RunOutcome

DEFAULT_TRACES = "kit-telemetry-traces.jsonl"
DEFAULT_PROMETHEUS = "127.0.0.1:9464"


def register(subparsers: Any) -> None:
    """Add the ``demo`` command."""
    parser = subparsers.add_parser(
        "demo",
        help="run an instrumented agent against a simulated model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=6, help="agent runs in all (default 6)")
    parser.add_argument(
        "--sessions", type=int, default=2, help="sessions the runs are spread over (default 2)"
    )
    parser.add_argument(
        "--seed", type=int, default=7, help="random seed; the same seed gives the same demo"
    )
    parser.add_argument(
        "--traces", default=DEFAULT_TRACES, help=f"OTLP/JSON trace file (default {DEFAULT_TRACES})"
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="add to the trace file instead of starting it afresh",
    )
    parser.add_argument(
        "--prometheus",
        default=DEFAULT_PROMETHEUS,
        metavar="HOST:PORT",
        help=f"serve /metrics here (default {DEFAULT_PROMETHEUS}; 'none' to skip; port 0 picks one)",
    )
    parser.add_argument(
        "--budgets", metavar="FILE", help="budgets TOML file (see examples/budgets.toml)"
    )
    parser.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="PATH",
        help="load an extension (repeatable)",
    )
    parser.add_argument(
        "--state-dir", metavar="DIR", help="where session state sidecars are written"
    )
    parser.add_argument(
        "--sleep", action="store_true", help="sleep for the simulated model latency"
    )
    parser.add_argument(
        "--hold",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep serving /metrics this long after the runs",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run the demo; exit 0, or 2 on bad options."""
    from kit_telemetry.telemetry import Telemetry

    from ..demo.agent import run_agent
    from ..demo.simulated import DEMO_MODELS, DEMO_PROMPTS
    from ..demo.tools import SimulatedTools

    if args.runs < 1 or args.sessions < 1:
        err.write("demo: --runs and --sessions must be at least 1\n")
        return 2
    prometheus = None if args.prometheus == "none" else args.prometheus
    if not args.append:
        # Each demo its own file: two demos with one seed would merge into one session.
        try:
            with open(args.traces, "w", encoding="utf-8"):
                pass
        except OSError as exc:
            err.write(f"demo: cannot start the trace file {args.traces!r}: {exc}\n")
            return 2
    _show_notifications(err)
    try:
        tel = Telemetry(
            service_name="kit-telemetry-demo",
            exporters=(f"otlp-json:{args.traces}",),
            prometheus=prometheus,
            budgets=args.budgets,
            extensions=args.extension,
            state_dir=args.state_dir,
        )
    except (ConfigError, KitTelemetryError, OSError) as exc:
        err.write(f"demo: {exc}\n")
        return 2
    outcomes: list[RunOutcome] = []
    with tel:
        if tel.metrics_server is not None:
            out.write(f"serving metrics on {tel.metrics_server.url}\n")
        out.write(f"writing traces to {os.path.abspath(args.traces)}\n\n")
        out.write(_ROW.format(*_HEADER) + "\n")
        tools = SimulatedTools(args.seed)
        sessions = [tel.session(f"demo-{args.seed}-{i}") for i in range(args.sessions)]
        for session in sessions:
            session.start()
        progress = _Progress(err, args.runs) if args.runs > 20 else None
        for i in range(args.runs):
            session = sessions[i % len(sessions)]
            model = DEMO_MODELS[i % len(DEMO_MODELS)]
            prompt = DEMO_PROMPTS[i % len(DEMO_PROMPTS)]
            outcome = run_agent(
                session, prompt, model, seed=args.seed * 1000 + i, tools=tools, sleep=args.sleep
            )
            outcomes.append(outcome)
            if progress is not None:
                progress.step()
            else:
                out.write(_format_run(outcome) + "\n")
            if outcome.budget_stop is not None and progress is None:
                out.write(f"    budget stop: {outcome.budget_stop}\n")
        if progress is not None:
            progress.done()
        for session in sessions:
            session.end()
        tel.force_flush()
        out.write("\n" + _summary(outcomes) + "\n")
        # Run-scoped budgets have one key per run: the per-run lines above already show them.
        run_budgets = (
            {b.name for b in tel.budget_config.budgets if b.scope == "run"}
            if tel.budget_config
            else set()
        )
        status = [s for s in tel.budget_status() if s.name not in run_budgets]
        if status:
            out.write("\nbudgets:\n")
            for s in status:
                out.write(
                    f"  {s.name:<16} {s.scope_key:<24} spent {s.spent:.4g} of {s.limit:.4g} {s.unit}\n"
                )
        if args.hold > 0 and tel.metrics_server is not None:
            out.write(
                f"\nholding {tel.metrics_server.url} open for {args.hold:g} s (Ctrl-C ends it)\n"
            )
            out.flush()
            try:
                time.sleep(args.hold)
            except KeyboardInterrupt:  # ending the hold early is a normal way out
                out.write("hold ended\n")
    return 0


def _show_notifications(stream: TextIO) -> None:
    """Extensions' notifications and telemetry warnings go to the kit_telemetry logger."""
    log = logging.getLogger("kit_telemetry")
    if not any(getattr(h, "_kit_demo", False) for h in log.handlers):
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("  %(levelname)s %(message)s"))
        handler._kit_demo = True  # type: ignore[attr-defined]
        log.addHandler(handler)
    log.setLevel(logging.INFO)


_HEADER = (
    "session",
    "model",
    "turns",
    "llm",
    "tools",
    "input",
    "cache rd",
    "cache wr",
    "output",
    "cost $",
    "stop",
)
_ROW = "{:<10} {:<18} {:>5} {:>4} {:>7} {:>8} {:>9} {:>9} {:>7} {:>9} {}"


def _format_run(outcome: RunOutcome) -> str:
    end = outcome.end
    if end is None:
        return f"{outcome.session_id}: no end event"
    tools = f"{end.tool_call_count}" + (
        f" ({outcome.failed_tools}!)" if outcome.failed_tools else ""
    )
    cost = _cost_cell(end.cost_usd, end.llm_call_count, end.unpriced_call_count)
    return _ROW.format(
        outcome.session_id[-10:],
        outcome.model[:18],
        end.turn_count,
        end.llm_call_count,
        tools,
        f"{end.input_tokens:,}",
        f"{end.cache_read_tokens:,}",
        f"{end.cache_write_tokens:,}",
        f"{end.output_tokens:,}",
        cost,
        end.stop_reason or "-",
    )


def _cost_cell(cost_usd: float, llm_calls: float, unpriced: float) -> str:
    # An unpriced call left out of the sum makes it a lower bound, never a plain figure.
    if unpriced and unpriced >= llm_calls:
        return "unpriced"
    return f"≥{cost_usd:.5f}" if unpriced else f"{cost_usd:.5f}"


def _summary(outcomes: list[RunOutcome]) -> str:
    # runs, llm calls, tokens, cost, unpriced calls
    per_model: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
    for o in outcomes:
        if o.end is None:
            continue
        row = per_model[o.model]
        row[0] += 1
        row[1] += o.end.llm_call_count
        row[2] += o.end.tokens.total
        row[3] += o.end.cost_usd
        row[4] += o.end.unpriced_call_count
    lines = [f"{'model':<20} {'runs':>5} {'llm calls':>10} {'tokens':>10} {'cost $':>10}"]
    total = [0, 0, 0, 0.0, 0]
    for model, row in sorted(per_model.items()):
        runs, calls, tokens, cost, unpriced = row
        cell = _cost_cell(cost, calls, unpriced)
        lines.append(f"{model:<20} {int(runs):>5} {int(calls):>10} {int(tokens):>10,} {cell:>10}")
        total = [a + b for a, b in zip(total, row, strict=True)]
    cell = _cost_cell(total[3], total[1], total[4])
    lines.append(
        f"{'total':<20} {int(total[0]):>5} {int(total[1]):>10} {int(total[2]):>10,} {cell:>10}"
    )
    stops = sum(1 for o in outcomes if o.budget_stop is not None)
    if stops:
        lines.append(f"{stops} run(s) stopped by a budget")
    return "\n".join(lines)


class _Progress:
    """A one-line progress bar on the error stream, for long demos."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self._stream = stream
        self._total = total
        self._done = 0

    def step(self) -> None:
        self._done += 1
        width = 30
        filled = width * self._done // self._total
        self._stream.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {self._done}/{self._total} runs"
        )
        self._stream.flush()

    def done(self) -> None:
        self._stream.write("\n")
