"""Tests for the session report: the model (spans -> sessions/runs) and ``kit-telemetry report``.

The fixture ``tests/fixtures/traces/sessions.jsonl`` holds four sessions written by hand so
their totals are known: ``s-alpha`` (kit runs, one failing), ``s-beta`` (a budget-denied call,
an unpriced model, a run split over two export batches), ``s-foreign`` (another
instrumentation: no ``kit.*`` attributes, no turn spans, a call outside any agent span, and
names full of markup) and ``s-gamma`` (only the run span, so only ``kit.run.*`` totals).
``truncated.jsonl`` is the same file cut in the middle of line 8.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kit_telemetry import semconv
from kit_telemetry.cli import build_parser, main
from kit_telemetry.exporters.otlp_json_reader import SpanRecord, read_otlp_json
from kit_telemetry.report import Report, RunSummary, build_report, render_text
from kit_telemetry.report.text import format_duration_ms
from kit_telemetry.tokens import TOKEN_KINDS, TokenUsage

FIXTURES = Path(__file__).parent / "fixtures" / "traces"
SESSIONS = FIXTURES / "sessions.jsonl"
TRUNCATED = FIXTURES / "truncated.jsonl"

EVIL_AGENT = "<img src=x onerror=\"document.title='pwned-agent'\">"


@dataclass(frozen=True)
class Expected:
    """A run's known figures, as the fixture was written."""

    session: str
    agent: str
    turns: int
    llm: int
    denied: int
    tools: int
    failed: int
    input: int
    output: int
    cache_read: int
    cache_write: int
    reasoning: int
    cost: float
    unpriced: int
    duration_ms: float
    stop: str | None


# Keyed by run id; foreign runs (no kit.run.id) are keyed by agent name instead.
# fmt: off
EXPECTED: dict[str, Expected] = {
    #                    session      agent         turns llm den tools fail input out  c.read c.write reas cost    unpr dur_ms stop
    "run-a1":   Expected("s-alpha",   "coder",      2,    2,  0,  2,    0,   2000, 460, 9000,  200,    0,   0.01365, 0,  5000,  "end_turn"),
    "run-a2":   Expected("s-alpha",   "coder",      2,    2,  0,  1,    1,   1000, 200, 0,     0,      50,  0.0045,  1,  3000,  "error"),
    "run-b1":   Expected("s-beta",    "researcher", 2,    1,  1,  1,    0,   1376, 500, 1024,  0,      0,   0.01,    0,  3990,  "budget_exceeded"),
    "run-b2":   Expected("s-beta",    "researcher", 1,    1,  0,  1,    0,   3000, 400, 0,     0,      0,   0.0,     1,  5000,  "stop"),
    "planner":  Expected("s-foreign", "planner",    2,    2,  0,  1,    0,   4000, 180, 500,   0,      0,   0.0,     2,  6000,  "stop"),
    EVIL_AGENT: Expected("s-foreign", EVIL_AGENT,   1,    1,  0,  1,    0,   100,  10,  0,     0,      0,   0.002,   0,  3000,  None),
    "(unknown)": Expected("s-foreign", "(unknown)", 1,    1,  0,  0,    0,   800,  60,  0,     0,      0,   0.0,     1,  1000,  "end_turn"),
    "run-g1":   Expected("s-gamma",   "summarizer", 3,    3,  0,  2,    0,   3000, 300, 600,   0,      0,   0.03,    0,  12000, "end_turn"),
}
# fmt: on

GRAND = Expected("", "", 14, 13, 1, 9, 1, 15276, 2110, 11124, 200, 50, 0.06015, 5, 38990, None)


def _key(run: RunSummary) -> str:
    return run.run_id if run.run_id in EXPECTED else run.agent_name


def _report(path: Path = SESSIONS) -> Report:
    traces = read_otlp_json(path)
    return build_report(traces.spans, read_errors=traces.errors)


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", *argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _figures(run: RunSummary) -> Expected:
    t = run.totals
    return Expected(
        run.session_id,
        run.agent_name,
        t.turn_count,
        t.llm_call_count,
        t.budget_denied_count,
        t.tool_call_count,
        t.failed_tool_call_count,
        t.tokens.input_tokens,
        t.tokens.output_tokens,
        t.tokens.cache_read_tokens,
        t.tokens.cache_write_tokens,
        t.tokens.reasoning_tokens,
        round(t.cost_usd, 9),
        t.unpriced_call_count,
        t.duration_ms,
        run.stop_reason,
    )


# --- parsing the text report ----------------------------------------------------------------


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Every table of a text report, as rows of header -> cell, cut at the rule's columns."""
    lines = text.splitlines()
    tables = []
    for i, line in enumerate(lines):
        if i == 0 or not re.fullmatch(r" *-+( {2}-+)*", line):
            continue
        spans = [m.span() for m in re.finditer(r"-+", line)]
        headers = [lines[i - 1][a:b].strip() for a, b in spans]
        rows = []
        for row in lines[i + 1 :]:
            if not row.strip():
                break
            rows.append({h: row[a:b].strip() for h, (a, b) in zip(headers, spans, strict=True)})
        tables.append(rows)
    return tables


def session_chunks(text: str) -> dict[str, str]:
    """The text of each ``Session <id>`` block, and the ``Grand total`` block."""
    chunks: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        match = re.match(r"Session (\S+) · ", line)
        if match:
            current = match.group(1)
        elif line == "Grand total":
            current = "Grand total"
        elif line.startswith("Warnings") or line.startswith("Unreadable input"):
            current = None
        if current is not None:
            chunks[current] = chunks.get(current, "") + line + "\n"
    return chunks


def _row_figures(row: dict[str, str]) -> tuple[object, ...]:
    def n(key: str) -> int:
        return int(row[key].replace(",", ""))

    return (
        n("turns"),
        n("LLM calls"),
        n("denied"),
        n("tools"),
        n("failed"),
        n("input"),
        n("output"),
        n("cache read"),
        n("cache write"),
        n("reasoning"),
        row["cost USD"],
        n("unpriced"),
    )


def cost_text(cost_usd: float, unpriced: int, llm_calls: int) -> str:
    """How the text report writes a cost: never a bare 0 for calls without a price."""
    if unpriced and unpriced >= llm_calls:
        return "unpriced"
    return ("≥" if unpriced else "") + f"{cost_usd:.6f}"


def _expected_figures(e: Expected) -> tuple[object, ...]:
    return (
        e.turns,
        e.llm,
        e.denied,
        e.tools,
        e.failed,
        e.input,
        e.output,
        e.cache_read,
        e.cache_write,
        e.reasoning,
        cost_text(e.cost, e.unpriced, e.llm),
        e.unpriced,
    )


# --- the model ----------------------------------------------------------------------------


def test_every_run_of_the_fixture_has_its_known_totals() -> None:
    """Each figure is recomputed from the spans exactly as the aggregator counts it."""
    report = _report()
    assert sorted(_key(r) for r in report.runs) == sorted(EXPECTED)
    for run in report.runs:
        assert _figures(run) == EXPECTED[_key(run)], run.run_id


def test_sessions_come_in_time_order_with_their_runs() -> None:
    """Runs are grouped by gen_ai.conversation.id, sessions and runs ordered by start."""
    report = _report()
    assert [s.session_id for s in report.sessions] == ["s-alpha", "s-beta", "s-foreign", "s-gamma"]
    alpha = report.session("s-alpha")
    assert alpha is not None
    assert [r.run_id for r in alpha.runs] == ["run-a1", "run-a2"]
    assert report.session("nope") is None


def test_grand_total_sums_every_session() -> None:
    """The report's totals are the sum of all runs, including foreign and fallback ones."""
    report = _report()
    t = report.totals
    assert (t.turn_count, t.llm_call_count, t.budget_denied_count) == (14, 13, 1)
    assert (t.tool_call_count, t.failed_tool_call_count) == (9, 1)
    assert t.tokens == TokenUsage(
        input_tokens=15276,
        output_tokens=2110,
        cache_read_tokens=11124,
        cache_write_tokens=200,
        reasoning_tokens=50,
    )
    assert t.unpriced_call_count == 5
    assert t.cost_usd == pytest.approx(0.06015)
    assert t.duration_ms == pytest.approx(38990)
    assert t.total_tokens == 15276 + 2110 + 11124 + 200


def test_recorded_kit_totals_agree_with_recomputed_ones() -> None:
    """The fixture's kit.run.* and kit.session.* totals match the child spans: no warnings."""
    assert _report().warnings == ()


def test_budget_denied_call_is_not_an_llm_call() -> None:
    """A refused call never reached the model: no tokens, no cost, counted apart."""
    report = _report()
    b1 = next(r for r in report.runs if r.run_id == "run-b1")
    assert (b1.totals.llm_call_count, b1.totals.budget_denied_count) == (1, 1)
    gpt4o = next(m for m in b1.models if m.model == "gpt-4o")
    assert (gpt4o.llm_call_count, gpt4o.budget_denied_count, gpt4o.unpriced_call_count) == (1, 1, 0)
    assert b1.error is not None and b1.error.startswith("BudgetExceeded:")


def test_failed_run_keeps_its_partial_totals_and_error() -> None:
    """An error run reports the calls it made, its failed tool and the error text."""
    a2 = next(r for r in _report().runs if r.run_id == "run-a2")
    assert a2.error == "RuntimeError: model exploded"
    assert a2.totals.tool_names == ("bash",)
    # The failed LLM call had no usage: counted, with zero tokens, as unpriced.
    assert (a2.totals.failed_llm_call_count, a2.totals.unpriced_call_count) == (1, 1)
    error_rows = [n.name for n in a2.spans if n.is_error]
    assert error_rows == ["invoke_agent coder", "execute_tool bash", "turn 1", "chat gpt-4o"]


def test_calls_without_a_price_are_unpriced_not_free() -> None:
    """A model without kit.usage.cost_usd adds no cost and is counted as unpriced."""
    models = {(m.provider, m.model): m for m in _report().models}
    llama = models[("ollama", "llama-3.1-8b")]
    assert (llama.cost_usd, llama.unpriced_call_count, llama.llm_call_count) == (0.0, 1, 1)
    mini = models[("openai", "gpt-4o-mini")]  # provider read from the older gen_ai.system
    assert (mini.unpriced_call_count, mini.tokens.input_tokens) == (2, 4000)
    assert mini.tokens.cache_read_tokens == 500


def test_cost_by_model_sums_to_the_report_cost() -> None:
    """Per-model rows cover every call, so their costs and counts add up to the totals."""
    report = _report()
    assert sum(m.cost_usd for m in report.models) == pytest.approx(report.totals.cost_usd)
    assert sum(m.llm_call_count for m in report.models) == report.totals.llm_call_count
    assert sum((m.tokens for m in report.models), TokenUsage()) == report.totals.tokens
    for session in report.sessions:
        assert sum(m.cost_usd for m in session.models) == pytest.approx(session.totals.cost_usd)


def test_run_without_child_spans_falls_back_to_kit_run_totals() -> None:
    """When only the run span was exported, its kit.run.* attributes are the figures."""
    g1 = next(r for r in _report().runs if r.run_id == "run-g1")
    assert g1.totals_source == "run attributes"
    assert g1.totals.tool_names == ("fetch", "fetch")
    assert [(m.model, m.cost_usd) for m in g1.models] == [("(run totals)", 0.03)]


def test_calls_outside_any_agent_span_become_an_inferred_run() -> None:
    """A lone chat span (no invoke_agent) is still counted, as a run named after its trace."""
    inferred = [r for r in _report().runs if r.inferred]
    assert len(inferred) == 1
    assert inferred[0].run_id == f"trace-{inferred[0].trace_id}"
    assert inferred[0].session_id == "s-foreign"


def test_foreign_spans_count_one_turn_per_llm_call() -> None:
    """Without turn spans a run has one turn per LLM call; its stop reason is the last finish."""
    planner = next(r for r in _report().runs if r.agent_name == "planner")
    assert planner.totals.turn_count == planner.totals.llm_call_count == 2
    assert planner.stop_reason == "stop"
    assert planner.totals_source == "spans"
    # Its parent (an HTTP span) is not in the file; it is still the run's root.
    assert planner.spans[0].name == "invoke_agent planner"
    assert [n.category for n in planner.spans] == ["run", "llm", "tool", "other", "llm"]


def test_cumulative_cost_ends_at_the_total_cost() -> None:
    """The cost line rises once per priced call, in time order, to the report's cost."""
    timeline = _report().cost_timeline
    times = [p.time_ns for p in timeline]
    assert times == sorted(times)
    assert len(timeline) == 6  # 5 priced calls + the fallback run's total
    assert timeline[-1].cumulative_usd == pytest.approx(0.06015)


def test_only_session_narrows_every_total() -> None:
    """A one-session report has that session's totals, models and cost line only."""
    beta = _report().only_session("s-beta")
    assert [s.session_id for s in beta.sessions] == ["s-beta"]
    assert beta.totals.cost_usd == pytest.approx(0.01)
    assert {m.model for m in beta.models} == {"gpt-4o", "llama-3.1-8b"}
    assert [p.run_id for p in beta.cost_timeline] == ["run-b1"]
    with pytest.raises(KeyError):
        _report().only_session("s-missing")


def _span(
    span_id: str,
    parent: str | None,
    name: str,
    start_ms: int,
    end_ms: int,
    attributes: Mapping[str, object],
    *,
    trace: str = "ab" * 16,
    status_code: int = 0,
) -> SpanRecord:
    return SpanRecord(
        trace_id=trace,
        span_id=span_id * 8,
        parent_span_id=parent * 8 if parent else None,
        name=name,
        kind=1,
        start_ns=start_ms * 1_000_000,
        end_ns=end_ms * 1_000_000,
        attributes=dict(attributes),  # type: ignore[arg-type]
        status_code=status_code,
    )


def _chat(span_id: str, parent: str, start: int, **extra: object) -> SpanRecord:
    attrs: dict[str, object] = {
        semconv.GEN_AI_OPERATION_NAME: "chat",
        semconv.GEN_AI_REQUEST_MODEL: "m",
        semconv.GEN_AI_USAGE_INPUT_TOKENS: 10,
        semconv.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
        **extra,
    }
    return _span(span_id, parent, "chat m", start, start + 5, attrs)


def test_a_sub_agent_counts_inside_the_outer_run() -> None:
    """A nested invoke_agent is part of its parent run, not a second run."""
    agent = {semconv.GEN_AI_OPERATION_NAME: "invoke_agent", semconv.GEN_AI_AGENT_NAME: "outer"}
    sub = {semconv.GEN_AI_OPERATION_NAME: "invoke_agent", semconv.GEN_AI_AGENT_NAME: "inner"}
    spans = [
        _chat("03", "02", 20, **{semconv.KIT_USAGE_COST_USD: 0.5}),
        _span("02", "01", "invoke_agent inner", 15, 40, sub),
        _chat("04", "01", 50, **{semconv.KIT_USAGE_COST_USD: 0.25}),
        _span("01", None, "invoke_agent outer", 10, 100, agent),
    ]
    report = build_report(spans)
    assert [r.agent_name for r in report.runs] == ["outer"]
    run = report.runs[0]
    assert (run.totals.llm_call_count, run.totals.cost_usd) == (2, 0.75)
    assert [(n.name, n.depth) for n in run.spans] == [
        ("invoke_agent outer", 0),
        ("invoke_agent inner", 1),
        ("chat m", 2),
        ("chat m", 1),
    ]
    assert run.session_id == "(no session)"


def test_disagreeing_kit_run_totals_become_warnings() -> None:
    """Figures come from child spans; a kit.run.* total that differs is reported, not used."""
    agent = {
        semconv.GEN_AI_OPERATION_NAME: "invoke_agent",
        semconv.KIT_RUN_ID: "r-1",
        semconv.total_attribute(semconv.KIT_RUN_PREFIX, "llm_call_count"): 3,
        semconv.total_attribute(semconv.KIT_RUN_PREFIX, "tool_names"): ("bash",),
        semconv.total_attribute(semconv.KIT_RUN_PREFIX, "input_tokens"): 10,
    }
    report = build_report([_span("01", None, "invoke_agent a", 0, 50, agent), _chat("02", "01", 5)])
    run = report.runs[0]
    assert run.totals.llm_call_count == 1
    assert run.warnings == (
        "run 'r-1': llm_call_count is 3 on the span but 1 from its child spans",
        "run 'r-1': tool_names is ['bash'] on the span but [] from its child spans",
    )
    assert report.warnings == run.warnings


def test_each_token_kind_is_cross_checked_and_read_disjoint_from_the_span() -> None:
    """Span input counts include the cache; the report splits them and checks every kind."""
    run_total = semconv.total_attribute
    agent = {
        semconv.GEN_AI_OPERATION_NAME: "invoke_agent",
        semconv.KIT_RUN_ID: "r-1",
        run_total(semconv.KIT_RUN_PREFIX, "input_tokens"): 100,
        run_total(semconv.KIT_RUN_PREFIX, "cache_read_tokens"): 600,
        run_total(semconv.KIT_RUN_PREFIX, "cache_write_tokens"): 9,  # the span says 300
        run_total(semconv.KIT_RUN_PREFIX, "reasoning_tokens"): 4,
    }
    chat = _chat(
        "02",
        "01",
        5,
        **{
            semconv.GEN_AI_USAGE_INPUT_TOKENS: 1000,
            semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 600,
            semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: 300,
            semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 4,
        },
    )
    run = build_report([_span("01", None, "invoke_agent a", 0, 50, agent), chat]).runs[0]
    expected = TokenUsage(
        input_tokens=100,
        output_tokens=1,
        cache_read_tokens=600,
        cache_write_tokens=300,
        reasoning_tokens=4,
    )
    assert run.totals.tokens == expected
    assert [m.tokens for m in run.models] == [expected]
    assert run.warnings == (
        "run 'r-1': cache_write_tokens is 9 on the span but 300 from its child spans",
    )


def test_run_totals_fallback_reads_every_token_kind() -> None:
    """With no call spans in the file, each kind comes from its own kit.run.* attribute."""
    counts = {kind: 10**i for i, kind in enumerate(TOKEN_KINDS)}
    agent: dict[str, object] = {
        semconv.GEN_AI_OPERATION_NAME: "invoke_agent",
        semconv.total_attribute(semconv.KIT_RUN_PREFIX, "llm_call_count"): 2,
        **{semconv.total_attribute(semconv.KIT_RUN_PREFIX, k): v for k, v in counts.items()},
    }
    report = build_report([_span("01", None, "invoke_agent a", 0, 50, agent)])
    run = report.runs[0]
    assert run.totals_source == "run attributes"
    assert run.totals.tokens == TokenUsage(**counts)
    assert [m.tokens for m in run.models] == [TokenUsage(**counts)]
    text = io.StringIO()
    render_text(report, text)
    runs, models = parse_tables(session_chunks(text.getvalue())["Grand total"])
    headers = ("input", "output", "cache read", "cache write", "reasoning")
    shown = ("1", "10", "100", "1,000", "10,000")  # TOKEN_KINDS order, each under its header
    assert tuple(runs[-1][h] for h in headers) == shown
    assert tuple(models[0][h] for h in headers) == shown


def test_the_same_span_twice_counts_once() -> None:
    """A batch exported twice (a retry) must not double any figure."""
    with tempfile.TemporaryDirectory() as tmp:
        doubled = Path(tmp) / "doubled.jsonl"
        doubled.write_text(SESSIONS.read_text() * 2)
        twice, once = _report(doubled), _report()
    assert twice.totals == once.totals
    assert [r.run_id for r in twice.runs] == [r.run_id for r in once.runs]


LINES = SESSIONS.read_text().splitlines()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.permutations(LINES))
def test_line_order_does_not_change_the_report(lines: list[str]) -> None:
    """Export batches may land in any order (children before parents); the report is the same."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shuffled.jsonl"
        path.write_text("\n".join(lines) + "\n")
        shuffled, original = io.StringIO(), io.StringIO()
        render_text(_report(path), shuffled)
        render_text(_report(), original)
    assert shuffled.getvalue() == original.getvalue()


# --- the command --------------------------------------------------------------------------


def test_report_is_a_registered_command_with_help(capsys: pytest.CaptureFixture[str]) -> None:
    """`kit-telemetry report --help` documents the arguments and the exit codes."""
    assert "report" in build_parser().format_help()
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "--session ID" in help_text and "--html OUT.html" in help_text
    assert "exit status" in help_text


def test_text_report_prints_every_run_with_the_fixture_numbers() -> None:
    """Each run row shows turns, calls, tools, tokens by kind, cost, duration and stop reason."""
    code, out, err = _cli(str(SESSIONS))
    assert (code, err) == (0, "")
    chunks = session_chunks(out)
    seen = set()
    for session_id in ("s-alpha", "s-beta", "s-foreign", "s-gamma"):
        runs_table = parse_tables(chunks[session_id])[0]
        for row in runs_table[:-1]:
            key = row["run"] if row["run"] in EXPECTED else row["agent"]
            expected = EXPECTED[key]
            assert expected.session == session_id
            assert _row_figures(row) == _expected_figures(expected), key
            assert row["stop reason"] == (expected.stop or "-")
            assert row["duration"] == f"{expected.duration_ms / 1000:.1f} s"
            seen.add(key)
        total = runs_table[-1]
        assert total["run"] == "total"
    assert seen == set(EXPECTED)


def test_text_report_has_a_grand_total_and_cost_per_model() -> None:
    """The grand total row and the all-sessions model table carry the fixture's totals."""
    _, out, _ = _cli(str(SESSIONS))
    grand, models = parse_tables(session_chunks(out)["Grand total"])
    total = grand[-1]
    assert total["session"] == "total" and total["runs"] == "8"
    assert _row_figures(total) == _expected_figures(GRAND)
    assert total["duration"] == "39.0 s"
    by_model = {(r["provider"], r["model"]): r for r in models}
    gpt4o = by_model[("openai", "gpt-4o")]
    assert (gpt4o["LLM calls"], gpt4o["denied"], gpt4o["cost USD"], gpt4o["unpriced"]) == (
        "3",
        "1",
        "≥0.014500",
        "1",
    )
    # Its one call had no price: not free, unpriced.
    assert by_model[("ollama", "llama-3.1-8b")]["cost USD"] == "unpriced"
    # Per-session model tables too: s-alpha's has exactly its two models.
    alpha_models = parse_tables(session_chunks(out)["s-alpha"])[1]
    assert [(r["model"], r["cost USD"]) for r in alpha_models] == [
        ("claude-sonnet-4-5", "0.013650"),
        ("gpt-4o", "≥0.004500"),
    ]


def test_text_report_names_errors_tools_and_fallbacks() -> None:
    """Below each table: run errors, tool names, and where figures are not from spans."""
    _, out, _ = _cli(str(SESSIONS))
    assert "run-a2: RuntimeError: model exploded" in out
    assert "run-a1 tools: bash, read_file" in out
    assert "run-g1: no call spans in the file; totals from kit.run.* attributes" in out
    assert "grouped by trace" in out
    assert "Warnings" not in out


def test_session_option_reports_one_session() -> None:
    """--session ID prints only that session, and the grand total is that session's."""
    code, out, err = _cli(str(SESSIONS), "--session", "s-beta")
    assert (code, err) == (0, "")
    chunks = session_chunks(out)
    assert set(chunks) == {"s-beta", "Grand total"}
    total = parse_tables(chunks["Grand total"])[0][-1]
    assert (total["runs"], total["cost USD"], total["LLM calls"], total["denied"]) == (
        "2",
        "≥0.010000",
        "2",
        "1",
    )


def test_unknown_session_is_bad_input() -> None:
    """An unknown --session exits 2 and lists the sessions the file does have."""
    code, out, err = _cli(str(SESSIONS), "--session", "s-nope")
    assert (code, out) == (2, "")
    assert "no session 's-nope'" in err and "s-alpha, s-beta, s-foreign, s-gamma" in err


def test_truncated_last_line_reports_the_rest_and_exits_1() -> None:
    """A cut last line is named on stderr; every complete line is still reported."""
    code, out, err = _cli(str(TRUNCATED))
    assert code == 1
    assert "line 8: truncated" in err
    assert "1 unreadable line(s) left out of the report" in err
    chunks = session_chunks(out)
    assert set(chunks) == {"s-alpha", "s-beta", "Grand total"}
    alpha_rows = parse_tables(chunks["s-alpha"])[0]
    assert _row_figures(alpha_rows[0]) == _expected_figures(EXPECTED["run-a1"])
    # run-b2's root span was on the lost line; its calls are kept as an inferred run.
    beta_rows = parse_tables(chunks["s-beta"])[0]
    assert beta_rows[1]["run"].startswith("trace-")
    assert _row_figures(beta_rows[1])[1:] == _expected_figures(EXPECTED["run-b2"])[1:]
    assert "Unreadable input" in out and "line 8" in out


def test_a_batch_glued_to_a_cut_line_is_still_reported(tmp_path: Path) -> None:
    """A writer that hit a full disk and appended again: only the cut bytes are lost."""
    glued = tmp_path / "glued.jsonl"
    # truncated.jsonl ends in half of line 8; the retried batch (lines 8-12) follows it.
    retried = SESSIONS.read_bytes().splitlines(keepends=True)[7:]
    glued.write_bytes(TRUNCATED.read_bytes() + b"".join(retried))
    code, out, err = _cli(str(glued))
    assert code == 1
    assert "line 8: the first" in err and "the complete one glued after it was read" in err
    assert "1 unreadable line(s) left out of the report" in err
    assert set(session_chunks(out)) == {"s-alpha", "s-beta", "s-foreign", "s-gamma", "Grand total"}
    report = _report(glued)
    assert sorted(_key(r) for r in report.runs) == sorted(EXPECTED)
    for run in report.runs:
        assert _figures(run) == EXPECTED[_key(run)], run.run_id


def test_missing_file_exits_2_with_a_clear_message() -> None:
    """A path that does not exist: one line on stderr, nothing on stdout."""
    code, out, err = _cli("/nonexistent/traces.jsonl")
    assert (code, out) == (2, "")
    assert err == "kit-telemetry report: /nonexistent/traces.jsonl: no such file\n"


def test_directory_is_not_readable_input(tmp_path: Path) -> None:
    """A directory given as TRACES is reported as unreadable, not a traceback."""
    code, out, err = _cli(str(tmp_path))
    assert (code, out) == (2, "")
    assert "cannot read" in err


def test_file_that_is_not_otlp_json_exits_2(tmp_path: Path) -> None:
    """Plain text: each bad line is named (a few), then a hint about the expected format."""
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"note {i}\n" for i in range(25)))
    code, out, err = _cli(str(path))
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"kit-telemetry report: {path}: line 1: not valid JSON")
    assert f"kit-telemetry report: {path}: ... and 15 more unreadable lines" in lines
    assert "is it an OTLP/JSON trace file" in lines[-1]


def test_json_that_is_not_a_trace_request_exits_2(tmp_path: Path) -> None:
    """Valid JSON lines of another shape (say, event logs) are not traces."""
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"type": "agent_end", "session_id": "s"}) + "\n")
    code, out, err = _cli(str(path))
    assert (code, out) == (2, "")
    assert "line 1: not a trace request" in err


def test_empty_file_exits_2(tmp_path: Path) -> None:
    """A file with no spans at all has nothing to report."""
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    code, out, err = _cli(str(path))
    assert (code, out) == (2, "")
    assert "holds no spans" in err


def test_cross_check_warning_is_printed_and_spans_win(tmp_path: Path) -> None:
    """A kit.run.cost_usd that disagrees with the chat spans is flagged; the spans' sum is shown."""
    lines = SESSIONS.read_text().splitlines()
    cost_key = semconv.total_attribute(semconv.KIT_RUN_PREFIX, "cost_usd")
    for i, line in enumerate(lines):
        if '"stringValue":"run-a1"' in line:
            data = json.loads(line)
            for span in data["resourceSpans"][0]["scopeSpans"][0]["spans"]:
                for attr in span["attributes"]:
                    if attr["key"] == cost_key:
                        attr["value"] = {"doubleValue": 0.5}
            lines[i] = json.dumps(data)
    path = tmp_path / "tampered.jsonl"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = _cli(str(path))
    assert (code, err) == (0, "")
    assert "run 'run-a1': cost_usd is 0.5 on the span but 0.01365 from its child spans" in out
    row = parse_tables(session_chunks(out)["s-alpha"])[0][0]
    assert row["cost USD"] == "0.013650"


def test_terminal_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    """A model name from the file cannot send escape sequences to the user's terminal."""
    span = {
        "traceId": "cd" * 16,
        "spanId": "ef" * 8,
        "name": "chat x",
        "startTimeUnixNano": "1000000000",
        "endTimeUnixNano": "2000000000",
        "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "evil\x1b[2J\x07"}},
        ],
    }
    line = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    path = tmp_path / "ansi.jsonl"
    path.write_text(json.dumps(line) + "\n")
    code, out, _ = _cli(str(path))
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b[2J\\x07" in out


def test_unwritable_html_path_exits_1_after_the_text_report(tmp_path: Path) -> None:
    """The text report is still printed when the page cannot be written."""
    target = tmp_path / "missing-dir" / "report.html"
    code, out, err = _cli(str(SESSIONS), "--html", str(target))
    assert code == 1
    assert "Grand total" in out
    assert f"cannot write {target}" in err
    assert not list(tmp_path.iterdir())


def test_html_option_writes_the_page_and_says_where(tmp_path: Path) -> None:
    """--html writes one file (no temporary left behind) and mentions it after the report."""
    target = tmp_path / "report.html"
    code, out, err = _cli(str(SESSIONS), "--html", str(target))
    assert (code, err) == (0, "")
    assert out.rstrip().endswith(f"HTML report written to {target}")
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize(
    ("duration_ms", "shown"),
    [
        (0.004, "0.00 ms"),
        (0.42, "0.42 ms"),
        (9.94, "9.9 ms"),
        (9.96, "10 ms"),
        (999.4, "999 ms"),
        (999.6, "1.0 s"),
        (59_949, "59.9 s"),
        (59_999, "1m 00s"),
        (125_000, "2m 05s"),
        (3_599_600, "1h 00m"),
        (3_725_000, "1h 02m"),
    ],
)
def test_durations_are_shown_in_a_readable_unit(duration_ms: float, shown: str) -> None:
    """Sub-millisecond tool calls stay visible and no value rounds up into a wrong unit."""
    assert format_duration_ms(duration_ms) == shown
