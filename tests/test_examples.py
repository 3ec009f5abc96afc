"""The scripts in examples/ run as real processes and print what their docstrings promise."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import kit_telemetry as kt
from kit_telemetry.exporters.otlp_json_reader import STATUS_CODE_ERROR, read_otlp_json
from kit_telemetry.tokens import TokenUsage

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``examples/<name>`` with this interpreter; fail with its output if it fails."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


# --- instrument_agent.py ------------------------------------------------------------------


def test_instrument_agent_prints_the_run_end_event(tmp_path: Path) -> None:
    """The hand-written loop's totals add up: three turns, one failed tool, cached input apart."""
    out = run_example("instrument_agent.py", str(tmp_path / "traces.jsonl"), cwd=tmp_path).stdout
    assert "run 'coder' ended: stop_reason=stop" in out
    assert "turns=3 llm_calls=3" in out
    assert "tool_calls=3 tools=read_file,read_file,run_tests" in out
    # prompt_tokens 550 + 1000 + 1300 of which 0 + 256 + 256 cached: from_openai splits them.
    assert "tokens: input=2338 cache_read=512 output=240 reasoning=48" in out
    assert "response='The test fails because add() ignores its second argument.'" in out
    cost = float(re.search(r"cost_usd=([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    expected = kt.PriceTable(None).cost_usd(
        "openai",
        "gpt-4o-mini",
        TokenUsage(input_tokens=2338, cache_read_tokens=512, output_tokens=240),
    )
    assert expected is not None
    assert cost == pytest.approx(expected, abs=1e-6)


def test_instrument_agent_writes_otlp_json_and_a_console_line(tmp_path: Path) -> None:
    """Both exporters receive the run: the trace file has the span tree, stderr the run line."""
    traces = tmp_path / "traces.jsonl"
    result = run_example("instrument_agent.py", str(traces), cwd=tmp_path)
    assert f"traces written to {traces}" in result.stdout
    assert "run coder (session example-session): 3 turns, 3 LLM calls" in result.stderr
    assert "3 tools (1 failed)" in result.stderr

    read = read_otlp_json(traces)
    assert read.errors == []
    names = [span.name for span in read.spans]
    assert names.count("invoke_agent coder") == 1
    assert sorted(n for n in names if n.startswith("turn ")) == ["turn 0", "turn 1", "turn 2"]
    chats = [s for s in read.spans if s.name == "chat gpt-4o-mini"]
    # On spans, gen_ai.usage.input_tokens is the whole input, cached tokens included.
    assert sorted(s.attributes["gen_ai.usage.input_tokens"] for s in chats) == [550, 1000, 1300]
    tools = [s for s in read.spans if s.name.startswith("execute_tool ")]
    failed = [s for s in tools if s.status_code == STATUS_CODE_ERROR]
    assert len(tools) == 3
    assert len(failed) == 1
    assert failed[0].attributes["gen_ai.tool.call.id"] == "call_0_1"
    assert len({s.trace_id for s in read.spans if not s.name.startswith("kit.session")}) == 1


def test_instrument_agent_without_a_path_uses_a_temporary_file(tmp_path: Path) -> None:
    """With no argument the example leaves nothing behind: the temporary trace file is gone."""
    out = run_example("instrument_agent.py", cwd=tmp_path).stdout
    match = re.search(r"traces written to (\S+)", out)
    assert match is not None
    assert not Path(match.group(1)).exists()
    assert list(tmp_path.iterdir()) == []


# --- scrape_metrics.py --------------------------------------------------------------------

SAMPLE = re.compile(r"^(?P<name>[a-z_]+)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def parse_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    samples = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            samples[(match["name"], labels)] = float(match["value"])
    return samples


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_scrape_metrics_prints_the_scraped_series(tmp_path: Path) -> None:
    """The endpoint serves tokens by kind, cost and GenAI call counts for the work done."""
    out = run_example("scrape_metrics.py", cwd=tmp_path).stdout
    samples = parse_samples(out)
    assert {name for name, _ in samples} == {
        "kit_llm_tokens_total",
        "kit_llm_cost_usd_total",
        "gen_ai_client_token_usage_count",
    }
    mini = {"provider": "openai", "model": "gpt-4o-mini"}
    assert sample(samples, "kit_llm_tokens_total", **mini, token_type="input") == 2100
    assert sample(samples, "kit_llm_tokens_total", **mini, token_type="cache_read") == 1024
    assert sample(samples, "kit_llm_tokens_total", **mini, token_type="output") == 450
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert sample(samples, "kit_llm_tokens_total", **sonnet, token_type="cache_read") == 4000
    prices = kt.PriceTable(None)
    for labels, usage in (
        (mini, {"input_tokens": 2100, "cache_read_tokens": 1024, "output_tokens": 450}),
        (sonnet, {"input_tokens": 2000, "cache_read_tokens": 4000, "output_tokens": 500}),
    ):
        expected = prices.cost_usd(labels["provider"], labels["model"], TokenUsage(**usage))
        assert expected is not None and expected > 0
        got = sample(samples, "kit_llm_cost_usd_total", **labels)
        assert got == pytest.approx(expected, rel=1e-9)
    genai = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "openai"}
    for token_type in ("input", "output"):
        count = sample(
            samples,
            "gen_ai_client_token_usage_count",
            **genai,
            gen_ai_request_model="gpt-4o-mini",
            gen_ai_token_type=token_type,
        )
        assert count == 2


def test_scrape_metrics_endpoint_is_on_a_free_port_and_closed_at_exit(tmp_path: Path) -> None:
    """Port 0 picks a real port, and shutting Telemetry down releases it."""
    out = run_example("scrape_metrics.py", cwd=tmp_path).stdout
    match = re.search(r"serving metrics on http://127\.0\.0\.1:(\d+)/metrics", out)
    assert match is not None
    port = int(match.group(1))
    assert port > 0
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))


# --- budget_alerts.py ---------------------------------------------------------------------


def test_budget_alerts_stops_runs_and_posts_alerts_to_the_webhook(tmp_path: Path) -> None:
    """The run limit stops each runaway run; the session budget warns twice, then stops."""
    out = run_example("budget_alerts.py", cwd=tmp_path).stdout
    assert re.search(r"webhook listening on http://127\.0\.0\.1:\d+/hook", out)

    stops = re.findall(r"run (\d+) stopped \((\w+)\): budget=(\S+) limit=(\S+) (\w+)", out)
    assert stops[:2] == [
        ("1", "budget_exceeded", "tool-loop", "5", "llm_calls"),
        ("2", "budget_exceeded", "tool-loop", "5", "llm_calls"),
    ]
    assert stops[-1][1:] == ("budget_exceeded", "per-session", "0.1", "usd")

    webhook = re.findall(
        r"webhook got: (\w+) at (\d+)% budget=per-session scope=budget-demo spent=(\S+)", out
    )
    assert [(kind, pct) for kind, pct, _ in webhook] == [
        ("warning", "50"),
        ("warning", "80"),
        ("exceeded", "100"),
    ]
    warned_at = [float(spent) for _, _, spent in webhook[:2]]
    assert 0.05 <= warned_at[0] < 0.08 <= warned_at[1] <= 0.1
    assert out.count("webhook got: exceeded at 100% budget=tool-loop") == len(stops) - 1
    assert "per-session alerts received: warning, warning, exceeded" in out

    refused_spent = float(re.findall(r"budget=per-session limit=0\.1 usd spent=(\S+)", out)[-1])
    status = re.search(r"status: per-session \(budget-demo\) spent (\S+) of 0\.1 usd", out)
    assert status is not None
    assert float(status.group(1)) == refused_spent
    assert 0.08 <= refused_spent <= 0.1  # refused before going over, never after
