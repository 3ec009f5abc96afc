"""The two example extensions: in the demo (a real ``kit-telemetry demo`` process) and in-process.

``examples/extensions/usage_budget.py`` reports usage per call, keeps a soft cap in session
state, summarises each run and offers a ``budget`` command; ``span_processor.py`` works on
raw spans: it tags slow tool calls on their run span and redacts secrets from tool
arguments before export.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

import kit_telemetry as kt
from kit_telemetry.testing import capture

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "extensions"
USAGE_BUDGET = str(EXAMPLES / "usage_budget.py")
SPAN_PROCESSOR = str(EXAMPLES / "span_processor.py")
Note = tuple[str, str, str]


def listen(tel: kt.Telemetry) -> list[Note]:
    notes: list[Note] = []
    tel._extensions.notifier = lambda extension, message, kind: notes.append(
        (extension, message, kind)
    )
    return notes


def otlp_spans(path: Path) -> Iterator[dict[str, Any]]:
    """Every span of an OTLP/JSON lines file, with its attributes as a plain dict."""
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    attributes = {}
                    for item in span.get("attributes", []):
                        value = item["value"]
                        if "arrayValue" in value:
                            attributes[item["key"]] = [
                                next(iter(v.values()))
                                for v in value["arrayValue"].get("values", [])
                            ]
                        else:
                            attributes[item["key"]] = next(iter(value.values()))
                    yield {"name": span["name"], "attributes": attributes}


def demo(tmp_path: Path, *extra: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "kit_telemetry",
            "demo",
            "--extension",
            USAGE_BUDGET,
            "--extension",
            SPAN_PROCESSOR,
            "--prometheus",
            "none",
            "--traces",
            str(tmp_path / "traces.jsonl"),
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The process environment without the examples' own variables."""
    monkeypatch.delenv("KIT_SOFT_CAP_USD", raising=False)
    monkeypatch.delenv("KIT_SLOW_TOOL_MS", raising=False)
    return dict(os.environ)


# --- in the demo ------------------------------------------------------------------------------
def test_both_examples_run_in_the_demo(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """``kit-telemetry demo --extension ... --extension ...`` shows both extensions at work."""
    done = demo(tmp_path, env={**clean_env, "KIT_SLOW_TOOL_MS": "0"})
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    spans = list(otlp_spans(tmp_path / "traces.jsonl"))
    chats = [s for s in spans if s["name"].startswith("chat ")]
    tools = [s for s in spans if s["name"].startswith("execute_tool ")]
    runs = [s for s in spans if s["name"].startswith("invoke_agent ")]
    assert chats and tools and len(runs) == 6

    # usage_budget: one line per LLM call, one summary per run, and one soft-cap warning
    # for each session whose calls (as priced on the exported spans) cost over $0.05.
    usage_lines = re.findall(r"\[usage_budget\] \S+ #\d+: in [\d,]+ cache", output)
    summaries = re.findall(r"\[usage_budget\] run coder done \(", output)
    warnings = re.findall(
        r"\[usage_budget\] session (\S+) has spent \$[\d.]+, over its soft cap of \$0.05", output
    )
    session_cost: dict[str, float] = {}
    for span in chats:
        session = span["attributes"]["gen_ai.conversation.id"]
        cost = float(span["attributes"].get("kit.usage.cost_usd", 0.0))
        session_cost[session] = session_cost.get(session, 0.0) + cost
    over_cap = sorted(s for s, cost in session_cost.items() if cost > 0.05)
    assert len(usage_lines) == len(chats)
    assert len(summaries) == len(runs)
    assert over_cap, f"no demo session costs over the default soft cap: {session_cost}"
    assert sorted(warnings) == over_cap

    # span_processor: with a 0 ms threshold every tool call is slow: one warning each, and
    # each run span carries its slow calls, matching the run's own tool count.
    slow = re.findall(r"\[span_processor\] slow tool call: (\S+) took", output)
    assert sorted(slow) == sorted(t["attributes"]["gen_ai.tool.name"] for t in tools)
    for run in runs:
        attributes = run["attributes"]
        tool_count = int(attributes["kit.run.tool_call_count"])
        if tool_count:
            assert int(attributes["example.slow_tools.count"]) == tool_count
            assert len(attributes["example.slow_tools.names"]) == tool_count
        else:
            assert "example.slow_tools.count" not in attributes


def test_demo_refuses_a_bad_soft_cap_at_start_up(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """A soft cap that is not an amount stops the demo with a message naming the variable."""
    done = demo(tmp_path, env={**clean_env, "KIT_SOFT_CAP_USD": "fifty cents"})
    assert done.returncode == 2
    assert "KIT_SOFT_CAP_USD='fifty cents' is not an amount in USD" in done.stderr
    assert "'usage_budget'" in done.stderr


# --- usage_budget in-process ------------------------------------------------------------------
def call(session: kt.Session, model: str, input_tokens: int, output_tokens: int) -> None:
    with session.run("go", agent_name="coder") as run:
        with run.llm_call(provider="openai", model=model) as llm:
            llm.record_usage(
                input_tokens=input_tokens, output_tokens=output_tokens, finish_reason="stop"
            )
        with run.tool_call("bash", call_id="c") as tool:
            tool.set_result("ok")


def test_usage_budget_reports_calls_warns_once_and_keeps_spend_in_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-call lines, one warning past the soft cap, run summaries, and the budget command."""
    monkeypatch.setenv("KIT_SOFT_CAP_USD", "0.01")
    session_file = tmp_path / "s.jsonl"
    with capture() as cap:
        tel = cap.telemetry
        notes = listen(tel)
        tel.load_extension(USAGE_BUDGET)
        with tel.session("s-budget", session_file=session_file) as session:
            for _ in range(3):
                call(session, "gpt-4o", 2000, 200)  # $0.007 a call at gpt-4o's prices
            call(session, "my-local-model", 100, 10)
            report = tel.run_command("budget", session=session)
        costs = [e.cost_usd for e in cap.events_of(kt.EventType.LLM_USAGE)]
    priced = [c for c in costs if c is not None]
    spent = sum(priced)
    assert len(priced) == 3 and costs[3] is None
    lines = [m for _, m, kind in notes if kind == "info" and " #0: " in m]
    assert len(lines) == 4
    first = f"${priced[0]:.5f} | session ${priced[0]:.4f}"
    assert lines[0] == f"gpt-4o #0: in 2,000 cache 0/0 out 200 (reasoning 0) {first}"
    assert "unpriced" in lines[3]
    warnings = [m for _, m, kind in notes if kind == "warning"]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"session s-budget has spent ${priced[0] + priced[1]:.4f}")
    summaries = [m for _, m, _ in notes if m.startswith("run coder done")]
    assert len(summaries) == 4
    assert "1 LLM calls, 1 tool calls [bash]" in summaries[0]
    assert "(+1 unpriced)" in summaries[3]
    assert report == (
        f"session s-budget: ${spent:.4f} over 4 LLM calls, 1 unpriced; over the soft cap of $0.01"
    )
    state = json.loads((tmp_path / "s.ext-state.json").read_text())
    assert state["usage_budget.spent_usd"] == pytest.approx(spent)
    assert state["usage_budget.llm_calls"] == 4
    assert state["usage_budget.soft_cap_warned"] is True


def test_usage_budget_spend_carries_over_when_the_session_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new Telemetry (an agent restart) on the same session file goes on from the kept spend."""
    monkeypatch.setenv("KIT_SOFT_CAP_USD", "0.01")
    session_file = tmp_path / "resume.jsonl"
    for restart in range(2):
        tel = kt.Telemetry(exporters=(), prometheus=CollectorRegistry(), extensions=[USAGE_BUDGET])
        notes = listen(tel)
        with tel, tel.session("resume", session_file=session_file) as session:
            call(session, "gpt-4o", 2000, 200)
            report = tel.run_command("budget", session=session)
        warnings = [m for _, m, kind in notes if kind == "warning"]
        if restart == 0:
            assert report.endswith("under the soft cap of $0.01") and warnings == []
        else:
            assert " over 2 LLM calls; over the soft cap" in report
            assert len(warnings) == 1


def test_usage_budget_reports_a_failed_run_as_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """The enriched end event of a run that raised is summarised with its error."""
    monkeypatch.delenv("KIT_SOFT_CAP_USD", raising=False)
    with capture() as cap:
        notes = listen(cap.telemetry)
        cap.telemetry.load_extension(USAGE_BUDGET)
        with (
            cap.telemetry.session("s-err") as session,
            pytest.raises(TimeoutError),
            session.run("go", agent_name="coder") as run,
        ):
            with run.llm_call(provider="openai", model="gpt-4o") as llm:
                llm.record_usage(input_tokens=10, output_tokens=1)
            raise TimeoutError("the model went quiet")
    errors = [m for _, m, kind in notes if kind == "error"]
    assert len(errors) == 1
    assert errors[0].startswith("run coder done (error, error TimeoutError: the model went quiet)")


# --- span_processor in-process ----------------------------------------------------------------
def test_span_processor_tags_slow_tools_on_the_run_and_redacts_arguments(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The run span exported carries its slow calls; secrets never reach the exporter."""
    monkeypatch.setenv("KIT_SLOW_TOOL_MS", "50")
    secret_args = {
        "cmd": "curl -H 'Authorization: Bearer abcdef123456' https://x",
        "api_key": "sk-live-1234567890",
    }
    with capture(capture_content=True) as cap:
        tel = cap.telemetry
        notes = listen(tel)
        loaded = tel.load_extension(SPAN_PROCESSOR)
        with tel.session("s-slow") as session, session.run("go", agent_name="coder") as run:
            with run.tool_call("bash", call_id="fast", arguments=secret_args) as tool:
                tool.set_result("ok")
            with run.tool_call("run_tests", call_id="slow") as tool:
                time.sleep(0.08)
                tool.set_result("3 passed")
            with run.tool_call("grep", call_id="fast-2") as tool:
                tool.set_result("nothing")
        report = tel.run_command("slow-tools")
        run_span = cap.span("invoke_agent coder")
        bash_span = cap.span("execute_tool bash")
        tool_call = cap.events_of(kt.EventType.TOOL_CALL)[0]
    assert len(loaded.span_processors) == 2
    assert run_span.attributes["example.slow_tools.count"] == 1
    assert run_span.attributes["example.slow_tools.names"] == ("run_tests",)
    warnings = [m for _, m, kind in notes if kind == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("slow tool call: run_tests took ")
    assert warnings[0].endswith("(threshold 50 ms) in session s-slow")
    assert report.startswith("run_tests: 1 slow call(s), slowest ")
    exported = bash_span.attributes["gen_ai.tool.call.arguments"]
    assert "abcdef123456" not in exported and "sk-live-1234567890" not in exported
    assert exported.count("[REDACTED]") == 2
    # Handlers still get the real arguments in-process.
    assert isinstance(tool_call, kt.ToolCallEvent) and tool_call.arguments == secret_args


def test_span_processor_refuses_a_bad_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A threshold that is not a number fails the load, naming the variable."""
    monkeypatch.setenv("KIT_SLOW_TOOL_MS", "-3")
    with capture() as cap, pytest.raises(kt.ExtensionLoadError, match="KIT_SLOW_TOOL_MS='-3'"):
        cap.telemetry.load_extension(SPAN_PROCESSOR)
