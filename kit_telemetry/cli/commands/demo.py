"""``kit-telemetry demo``: an instrumented agent against a built-in simulated model.

It prints one line per run and a closing summary, serves ``/metrics`` while it runs, and
writes its traces as OTLP/JSON lines to a local file (``kit-telemetry report`` reads it).

By default it does ``--runs`` runs as fast as it can. With ``--duration SECONDS`` or
``--forever`` (until Ctrl-C) it keeps starting runs at a user's pace, the model and tools
taking realistic time (``--pace`` scales it), so that Prometheus and the Grafana dashboard
in exporters/ see rates rather than one jump; sessions then end after a few runs or a
budget stop, and new ones take their place.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TextIO

from kit_telemetry.errors import ConfigError, KitTelemetryError

if TYPE_CHECKING:
    from kit_telemetry.telemetry import Telemetry

    from ..demo.agent import RunOutcome
    from ..demo.pacing import Pacing

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
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--runs", type=int, default=6, help="agent runs in all (default 6)")
    length.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="keep starting runs, paced, for this long instead of doing --runs",
    )
    length.add_argument(
        "--forever", action="store_true", help="keep starting runs, paced, until Ctrl-C"
    )
    parser.add_argument(
        "--pace",
        type=float,
        metavar="FACTOR",
        help="wall time the model, tools and user take, as a factor of real time "
        "(default 1 with --duration or --forever, else 0: no waiting; 0.05 is 20x faster)",
    )
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
        "--sleep",
        action="store_true",
        help="sleep for the simulated model latency (the same as --pace 0.005)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="serve /metrics this long before the first run, so that Prometheus sees the "
        "counters start (a counter first scraped above 0 loses its first increments)",
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

    from ..demo.pacing import Pacing

    continuous = args.forever or args.duration is not None
    if args.runs < 1 or args.sessions < 1:
        err.write("demo: --runs and --sessions must be at least 1\n")
        return 2
    if not 0 <= args.warmup < float("inf"):
        err.write(f"demo: --warmup {args.warmup:g} is not a number of seconds\n")
        return 2
    if args.duration is not None and not 0 < args.duration < float("inf"):
        err.write(f"demo: --duration {args.duration:g} is not a number of seconds above 0\n")
        return 2
    pace = args.pace if args.pace is not None else _default_pace(continuous, args.sleep)
    try:
        pacing = Pacing(pace, seed=args.seed)
    except ConfigError:
        err.write(f"demo: --pace {pace:g} is not a factor of 0 or more\n")
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
    with tel:
        if tel.metrics_server is not None:
            out.write(f"serving metrics on {tel.metrics_server.url}\n")
        out.write(f"writing traces to {os.path.abspath(args.traces)}\n")
        if continuous:
            until = "Ctrl-C" if args.forever else f"{args.duration:g} s"
            out.write(f"running at pace {pace:g} until {until}\n")
        out.write("\n" + _ROW.format(*_HEADER) + "\n")
        out.flush()
        with _CtrlCStopsPacing(pacing, enabled=continuous):
            if args.warmup > 0 and tel.metrics_server is not None:
                pacing.pause(args.warmup)
            tally = _run_all(tel, args, pacing, out, err, continuous)
        tel.force_flush()
        out.write("\n" + tally.summary() + "\n")
        _write_budgets(tel, out)
        if args.hold > 0 and tel.metrics_server is not None:
            out.write(
                f"\nholding {tel.metrics_server.url} open for {args.hold:g} s (Ctrl-C ends it)\n"
            )
            out.flush()
            try:
                _hold(args.hold)
            except KeyboardInterrupt:  # ending the hold early is a normal way out
                out.write("hold ended\n")
                out.flush()  # before shutdown, so a slow one shows where it is
    return 0


def _hold(seconds: float) -> None:
    """Sleep ``seconds`` in short slices.

    Python runs a SIGINT handler only on the main thread, between bytecodes: one long sleep
    is cut short only when the kernel hands the signal to the main thread itself, while a
    slice of at most 0.2 s ends Ctrl-C's wait whichever thread took it.
    """
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 0.2))


def _default_pace(continuous: bool, sleep: bool) -> float:
    if continuous:
        return 1.0
    # --sleep predates --pace: the simulated latency itself, unscaled.
    return 0.005 if sleep else 0.0


def _run_all(
    tel: Telemetry,
    args: argparse.Namespace,
    pacing: Pacing,
    out: TextIO,
    err: TextIO,
    continuous: bool,
) -> _Tally:
    """Run the agent ``--runs`` times, or until ``--duration`` or Ctrl-C when continuous."""
    from ..demo.agent import run_agent
    from ..demo.sessions import DemoSessions
    from ..demo.simulated import DEMO_MODELS, DEMO_PROMPTS
    from ..demo.tools import SimulatedTools

    tools = SimulatedTools(args.seed)
    sessions = DemoSessions(tel, args.seed, args.sessions, rotate=continuous)
    deadline = None if args.duration is None else time.monotonic() + args.duration
    progress = _Progress(err, args.runs) if args.runs > 20 and not continuous else None
    tally = _Tally()
    indices: Iterator[int] = _count() if continuous else iter(range(args.runs))
    for i in indices:
        if pacing.stopped or (deadline is not None and time.monotonic() >= deadline):
            break
        if i and continuous:
            pacing.between_runs(None if deadline is None else deadline - time.monotonic())
            if pacing.stopped or (deadline is not None and time.monotonic() >= deadline):
                break
        session = sessions.for_run(i)
        outcome = run_agent(
            session,
            DEMO_PROMPTS[i % len(DEMO_PROMPTS)],
            DEMO_MODELS[i % len(DEMO_MODELS)],
            seed=args.seed * 1000 + i,
            tools=tools,
            pacing=pacing,
        )
        tally.add(outcome)
        sessions.after_run(i, outcome)
        if progress is not None:
            progress.step()
            continue
        out.write(_format_run(outcome) + "\n")
        if outcome.budget_stop is not None:
            out.write(f"    budget stop: {outcome.budget_stop}\n")
        out.flush()
    if progress is not None:
        progress.done()
    sessions.end_all()
    return tally


def _count() -> Iterator[int]:
    i = 0
    while True:
        yield i
        i += 1


class _CtrlCStopsPacing:
    """Ctrl-C stops a paced demo's pacing instead of raising in the middle of a run.

    The run under way then finishes without waiting and no new one starts, so every span
    ends and the summary is printed. Only the main thread can take signals; elsewhere (and
    when not ``enabled``) Ctrl-C keeps its usual meaning.
    """

    def __init__(self, pacing: Pacing, *, enabled: bool) -> None:
        self._pacing = pacing
        self._enabled = enabled and threading.current_thread() is threading.main_thread()
        self._previous: Callable[[int, Any], Any] | int | None = None

    def __enter__(self) -> None:
        if self._enabled:
            self._previous = signal.signal(signal.SIGINT, self._on_interrupt)

    def __exit__(self, *exc_info: object) -> None:
        if self._enabled:
            # None: a handler not set from Python; Python's own is the closest to it.
            previous = signal.default_int_handler if self._previous is None else self._previous
            signal.signal(signal.SIGINT, previous)

    def _on_interrupt(self, signum: int, frame: Any) -> None:
        self._pacing.stop()


def _write_budgets(tel: Telemetry, out: TextIO) -> None:
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
    tally = _Tally()
    for outcome in outcomes:
        tally.add(outcome)
    return tally.summary()


class _Tally:
    """Per-model totals of the runs so far: a demo that runs for days keeps no run list."""

    def __init__(self) -> None:
        # runs, llm calls, tokens, cost, unpriced calls
        self._per_model: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
        self._stops = 0

    def add(self, outcome: RunOutcome) -> None:
        self._stops += outcome.budget_stop is not None
        end = outcome.end
        if end is None:
            return
        row = self._per_model[outcome.model]
        row[0] += 1
        row[1] += end.llm_call_count
        row[2] += end.tokens.total
        row[3] += end.cost_usd
        row[4] += end.unpriced_call_count

    def summary(self) -> str:
        lines = [f"{'model':<20} {'runs':>5} {'llm calls':>10} {'tokens':>10} {'cost $':>10}"]
        total = [0, 0, 0, 0.0, 0]
        for model, row in sorted(self._per_model.items()):
            runs, calls, tokens, cost, unpriced = row
            cell = _cost_cell(cost, calls, unpriced)
            lines.append(
                f"{model:<20} {int(runs):>5} {int(calls):>10} {int(tokens):>10,} {cell:>10}"
            )
            total = [a + b for a, b in zip(total, row, strict=True)]
        cell = _cost_cell(total[3], total[1], total[4])
        lines.append(
            f"{'total':<20} {int(total[0]):>5} {int(total[1]):>10} {int(total[2]):>10,} {cell:>10}"
        )
        if self._stops:
            lines.append(f"{self._stops} run(s) stopped by a budget")
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
