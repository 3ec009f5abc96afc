"""Multi-process mode: real worker processes write, the serving process sums exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from kit_telemetry.exporters.prometheus import start_metrics_server
from kit_telemetry.metrics import mark_process_dead, multiprocess_registry

CALLS_PER_WORKER = 400
WORKERS = 3

# Each worker imports prometheus-client with PROMETHEUS_MULTIPROC_DIR set (as a gunicorn
# worker would), records its share, and prints its pid and whether the mode was on.
WORKER = textwrap.dedent(
    """
    import sys
    from kit_telemetry.events import AgentEndEvent, LLMUsageEvent, ToolResultEvent
    from kit_telemetry.metrics import KitMetrics

    index, calls = int(sys.argv[1]), int(sys.argv[2])
    metrics = KitMetrics(strict=True)
    for i in range(calls):
        metrics.record_llm_call(LLMUsageEvent(
            session_id=f"s-{index}", timestamp_ns=i, provider="openai", model=f"gpt-{i % 2}",
            input_tokens=100, cache_read_tokens=20, output_tokens=7, cost_usd=0.001,
            duration_ms=300.0,
        ))
        metrics.record_tool_call(ToolResultEvent(
            session_id=f"s-{index}", timestamp_ns=i, tool_name="bash", duration_ms=50.0,
        ))
    metrics.record_run(AgentEndEvent(
        session_id=f"s-{index}", timestamp_ns=1, agent_name="coder", stop_reason="end_turn",
        duration_ms=1000.0, llm_call_count=calls, cost_usd=calls * 0.001,
    ))
    metrics.set_budget_limit("daily", "usd", 50.0)
    metrics.set_budget_usage("daily", "global", float(sys.argv[3]), 0.0)
    metrics.set_budget_max_utilization("per-session", index / 10)
    print(__import__("os").getpid(), metrics.multiprocess, flush=True)
    """
)


def run_worker(script: Path, folder: Path, index: int, spent: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    return subprocess.Popen(
        [sys.executable, str(script), str(index), str(CALLS_PER_WORKER), str(spent)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> int:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    pid, mode = out.split()
    assert mode == "True"  # auto-detected from the environment
    return int(pid)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "prometheus-multiproc"
    path.mkdir()
    return path


def test_worker_processes_add_up_exactly_and_dead_workers_drop_gauges(
    tmp_path: Path, folder: Path
) -> None:
    """Counters and histograms sum across workers; gauges follow their modes and liveness."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    workers = [run_worker(script, folder, index, spent=1.0) for index in range(1, WORKERS + 1)]
    pids = [finish(worker) for worker in workers]
    # A later worker reads the shared ledger afresh: its reading is the most recent one.
    pids.append(finish(run_worker(script, folder, 0, spent=7.5)))
    total_calls = (WORKERS + 1) * CALLS_PER_WORKER

    registry = multiprocess_registry(str(folder))
    get = registry.get_sample_value
    calls = sum(
        get("kit_llm_calls_total", {"provider": "openai", "model": f"gpt-{k}", "outcome": "ok"})
        or 0
        for k in range(2)
    )
    assert calls == total_calls
    tokens = {"provider": "openai", "model": "gpt-0", "token_type": "input"}
    assert get("kit_llm_tokens_total", tokens) == 100 * total_calls / 2
    cost = get("kit_llm_cost_usd_total", {"provider": "openai", "model": "gpt-1"})
    assert cost == pytest.approx(0.001 * total_calls / 2)
    assert get("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"}) == total_calls
    assert get("kit_tool_duration_seconds_bucket", {"tool": "bash", "le": "0.04"}) == 0
    assert get("kit_tool_duration_seconds_bucket", {"tool": "bash", "le": "0.08"}) == total_calls
    assert get("kit_tool_duration_seconds_sum", {"tool": "bash"}) == pytest.approx(
        0.05 * total_calls
    )
    genai = {
        "gen_ai_operation_name": "chat",
        "gen_ai_provider_name": "openai",
        "gen_ai_request_model": "gpt-0",
    }
    usage = {**genai, "gen_ai_token_type": "input"}
    assert get("gen_ai_client_token_usage_count", usage) == total_calls / 2
    assert get("gen_ai_client_token_usage_sum", usage) == 120 * total_calls / 2
    assert get("kit_agent_runs_total", {"agent": "coder", "stop_reason": "end_turn"}) == 4
    # Gauges: a limit and a shared spend are not multiplied by the number of workers.
    assert get("kit_budget_limit_usd", {"budget": "daily"}) == 50.0
    assert get("kit_budget_spent_usd", {"budget": "daily", "scope_key": "global"}) == 7.5
    assert get("kit_budget_max_utilization_ratio", {"budget": "per-session"}) == pytest.approx(0.3)

    # The same registry through a real HTTP endpoint.
    with (
        start_metrics_server("127.0.0.1:0", registry=registry) as server,
        urllib.request.urlopen(server.url, timeout=5) as response,
    ):
        body = response.read().decode("utf-8")
    scraped = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    key = ("kit_tool_calls_total", (("outcome", "ok"), ("tool", "bash")))
    assert scraped[key] == total_calls

    for pid in pids:
        mark_process_dead(pid, str(folder))
    registry = multiprocess_registry(str(folder))
    assert registry.get_sample_value("kit_budget_limit_usd", {"budget": "daily"}) is None
    assert (
        registry.get_sample_value("kit_tool_calls_total", {"tool": "bash", "outcome": "ok"})
        == total_calls
    )  # dead workers' counts still count


def test_multiprocess_registry_reads_the_environment(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a path, the serving process uses PROMETHEUS_MULTIPROC_DIR."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))
    registry = multiprocess_registry()
    assert list(registry.collect()) == []  # an empty folder: nothing recorded yet


# Sets the switch after prometheus-client (and so kit-telemetry's metrics) was imported.
LATE_SWITCH = textwrap.dedent(
    """
    import os, sys
    from kit_telemetry.errors import ConfigError
    from kit_telemetry.metrics import KitMetrics

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    print(KitMetrics().multiprocess)
    try:
        KitMetrics(multiprocess=True)
    except ConfigError as exc:
        print(exc)
    """
)


def test_a_switch_set_after_import_leaves_the_mode_off_and_refuses_it(folder: Path) -> None:
    """prometheus-client reads PROMETHEUS_MULTIPROC_DIR at import: later, asking is an error."""
    env = {k: v for k, v in os.environ.items() if k.lower() != "prometheus_multiproc_dir"}
    result = subprocess.run(
        [sys.executable, "-c", LATE_SWITCH, str(folder)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    auto, error = result.stdout.splitlines()
    assert auto == "False"
    assert "PROMETHEUS_MULTIPROC_DIR" in error and "before the process imports" in error
    assert list(folder.iterdir()) == []  # nothing was written to the folder
